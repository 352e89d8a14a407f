// A thin, binary-safe bridge over the raw Lua 5.4 C API that wasmoon's
// WebAssembly module exports.  Only plain data crosses it: nil, booleans,
// numbers, byte strings (one JS char per byte) and copies of plain
// arrays/objects.  No JavaScript object is ever pushed into Lua, so scripts
// cannot reach JavaScript (see platform.md, "Sandbox hole").
import { LuaWasm } from 'wasmoon';

const LUA_REGISTRYINDEX = -1001000;
const LUA_MULTRET = -1;
const T = { nil: 0, boolean: 1, lightuserdata: 2, number: 3, string: 4, table: 5, function: 6, userdata: 7, thread: 8 } as const;
const TYPE_NAMES = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'] as const;

/** A value received from Lua.  Strings are byte strings (latin1). */
export type LuaArg = undefined | boolean | number | string | LuaOpaque;

/** A value Lua holds that does not cross the bridge (table, function …). */
export class LuaOpaque {
  constructor(readonly type: string) {}
}

/** A value that can be pushed to Lua (copied). */
export type LuaPushable =
  | undefined
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | readonly LuaPushable[]
  | { readonly [key: string]: LuaPushable };

/** Raise a Lua error from a bridged function.  `position` adds `chunk:line: `. */
export class LuaError extends Error {
  constructor(
    message: string,
    readonly position = false,
  ) {
    super(message);
  }
}

export type BridgedFunction = (args: LuaArg[]) => LuaPushable[] | LuaPushable | void;
/** A function that works on the Lua stack itself; returns the result count. */
export type RawFunction = (L: number, state: LuaState) => number;

interface EmscriptenModule {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  addFunction(fn: (...args: number[]) => number, signature: string): number;
  [name: `_${string}`]: (...args: (number | bigint)[]) => number;
}

export function luaTypeName(v: LuaArg): string {
  if (v === undefined) return 'nil';
  if (v instanceof LuaOpaque) return v.type;
  return typeof v;
}

/** Text for a message pushed to Lua: bytes as given, or UTF-8 for wider text. */
function textBytes(s: string): Buffer {
  // eslint-disable-next-line no-control-regex
  return /[^\u0000-\u00ff]/.test(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'latin1');
}

export class LuaState {
  readonly L: number;
  private readonly m: EmscriptenModule;
  private scratch = 0;
  private scratchSize = 0;
  private readonly lengthPtr: number;
  private readonly functionPointers: number[] = [];

  private constructor(module: EmscriptenModule) {
    this.m = module;
    this.L = module._luaL_newstate!();
    module._luaL_openlibs!(this.L);
    this.lengthPtr = module._malloc!(8);
  }

  static async create(environment: Record<string, string>): Promise<LuaState> {
    const wasm = await LuaWasm.initialize(undefined, environment);
    return new LuaState(wasm.module as unknown as EmscriptenModule);
  }

  /** The emscripten file system behind Lua's `io` (used to stage real files). */
  get fs(): unknown {
    return (this.m as unknown as { FS: unknown }).FS;
  }

  private api(name: string): (...args: (number | bigint)[]) => number {
    return this.m[`_${name}`]!;
  }

  private bytesToScratch(bytes: Buffer, terminate: boolean): number {
    const need = bytes.length + 1;
    if (need > this.scratchSize) {
      if (this.scratch !== 0) this.api('free')(this.scratch);
      this.scratchSize = Math.max(need, 256, this.scratchSize * 2);
      this.scratch = this.api('malloc')(this.scratchSize);
    }
    this.m.HEAPU8.set(bytes, this.scratch);
    if (terminate) this.m.HEAPU8[this.scratch + bytes.length] = 0;
    return this.scratch;
  }

  // ---- reading values ---------------------------------------------------

  type(L: number, idx: number): number {
    return this.api('lua_type')(L, idx);
  }

  toBytes(L: number, idx: number): Buffer {
    const p = this.api('lua_tolstring')(L, idx, this.lengthPtr);
    const n = this.m.HEAPU32[this.lengthPtr >> 2]!;
    return Buffer.from(this.m.HEAPU8.subarray(p, p + n));
  }

  toByteString(L: number, idx: number): string {
    const p = this.api('lua_tolstring')(L, idx, this.lengthPtr);
    const n = this.m.HEAPU32[this.lengthPtr >> 2]!;
    return Buffer.from(this.m.HEAPU8.buffer, p, n).toString('latin1');
  }

  read(L: number, idx: number): LuaArg {
    const t = this.type(L, idx);
    switch (t) {
      case T.nil:
        return undefined;
      case T.boolean:
        return this.api('lua_toboolean')(L, idx) !== 0;
      case T.number:
        return this.api('lua_tonumberx')(L, idx, 0);
      case T.string:
        return this.toByteString(L, idx);
      default:
        return new LuaOpaque(TYPE_NAMES[t] ?? 'unknown');
    }
  }

  private readArgs(L: number): LuaArg[] {
    const n = this.api('lua_gettop')(L);
    const args: LuaArg[] = new Array(n);
    for (let i = 0; i < n; i++) args[i] = this.read(L, i + 1);
    return args;
  }

  /** A Lua table as plain JS data (nested tables become nested objects). */
  readTable(L: number, idx: number, depth = 0): Map<LuaArg, unknown> {
    const abs = this.api('lua_absindex')(L, idx);
    const out = new Map<LuaArg, unknown>();
    this.api('lua_pushnil')(L);
    while (this.api('lua_next')(L, abs) !== 0) {
      const key = this.read(L, -2);
      const value = this.type(L, -1) === T.table && depth < 100 ? this.readTable(L, -1, depth + 1) : this.read(L, -1);
      out.set(key, value);
      this.api('lua_settop')(L, -2);
    }
    return out;
  }

  // ---- pushing values ---------------------------------------------------

  pushBytes(L: number, bytes: Buffer): void {
    const p = this.bytesToScratch(bytes, false);
    this.api('lua_pushlstring')(L, p, bytes.length);
  }

  push(L: number, v: LuaPushable): void {
    if (v === undefined || v === null) this.api('lua_pushnil')(L);
    else if (typeof v === 'boolean') this.api('lua_pushboolean')(L, v ? 1 : 0);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) this.api('lua_pushinteger')(L, BigInt(v));
      else this.api('lua_pushnumber')(L, v);
    } else if (typeof v === 'bigint') this.api('lua_pushinteger')(L, BigInt.asIntN(64, v));
    else if (typeof v === 'string') this.pushBytes(L, Buffer.from(v, 'latin1'));
    else if (Buffer.isBuffer(v)) this.pushBytes(L, v);
    else if (Array.isArray(v)) {
      this.api('lua_createtable')(L, v.length, 0);
      for (let i = 0; i < v.length; i++) {
        this.push(L, v[i] as LuaPushable);
        this.api('lua_rawseti')(L, -2, BigInt(i + 1));
      }
    } else {
      const entries = Object.entries(v as Record<string, LuaPushable>);
      this.api('lua_createtable')(L, 0, entries.length);
      for (const [key, value] of entries) {
        this.pushBytes(L, Buffer.from(key, 'latin1'));
        this.push(L, value);
        this.api('lua_rawset')(L, -3);
      }
    }
  }

  pushText(L: number, s: string): void {
    this.pushBytes(L, textBytes(s));
  }

  // ---- functions --------------------------------------------------------

  private raise(L: number, error: unknown): number {
    const message = error instanceof Error ? error.message : String(error);
    if (error instanceof LuaError && error.position) {
      this.api('luaL_where')(L, 1);
      this.pushText(L, message);
      this.api('lua_concat')(L, 2);
    } else {
      this.pushText(L, message);
    }
    return this.api('lua_error')(L);
  }

  /** Pushes a C function that calls `fn` with its arguments as JS values. */
  pushFunction(L: number, fn: BridgedFunction): void {
    this.pushRawFunction(L, (L2) => {
      const result = fn(this.readArgs(L2));
      if (result === undefined) return 0;
      if (Array.isArray(result)) {
        for (const v of result) this.push(L2, v as LuaPushable);
        return result.length;
      }
      this.push(L2, result as LuaPushable);
      return 1;
    });
  }

  pushRawFunction(L: number, fn: RawFunction): void {
    const pointer = this.m.addFunction((L2: number) => {
      let count = 0;
      let failure: unknown;
      let failed = false;
      try {
        count = fn(L2, this);
      } catch (e) {
        failed = true;
        failure = e;
      }
      // lua_error unwinds through this frame, so it must come last.
      if (failed) return this.raise(L2, failure);
      return count;
    }, 'ii');
    this.functionPointers.push(pointer);
    this.api('lua_pushcclosure')(L, pointer, 0);
  }

  /** A new full userdata with the metatable at `mtIndex` (for Lua-side objects). */
  newUserdata(L: number, mtIndex: number): void {
    const abs = this.api('lua_absindex')(L, mtIndex);
    this.api('lua_newuserdatauv')(L, 0, 0);
    this.api('lua_pushvalue')(L, abs);
    this.api('lua_setmetatable')(L, -2);
  }

  // ---- calling Lua ------------------------------------------------------

  /** Compiles a chunk; returns a registry reference to the function, or the error text. */
  load(source: Buffer, chunkName: string): number | string {
    const L = this.L;
    const top = this.api('lua_gettop')(L);
    const name = Buffer.from(chunkName + '\0', 'latin1');
    const malloc = this.api('malloc');
    const namePtr = malloc(name.length);
    this.m.HEAPU8.set(name, namePtr);
    const srcPtr = malloc(source.length + 1);
    this.m.HEAPU8.set(source, srcPtr);
    const status = this.api('luaL_loadbufferx')(L, srcPtr, source.length, namePtr, 0);
    this.api('free')(srcPtr);
    this.api('free')(namePtr);
    if (status !== 0) {
      const message = this.toByteString(L, -1);
      this.api('lua_settop')(L, top);
      return message;
    }
    return this.api('luaL_ref')(L, LUA_REGISTRYINDEX);
  }

  /** Calls the function behind `ref` in protected mode; throws LuaError with its message. */
  call(ref: number, args: readonly LuaPushable[]): LuaArg[] {
    const L = this.L;
    const top = this.api('lua_gettop')(L);
    this.api('lua_rawgeti')(L, LUA_REGISTRYINDEX, BigInt(ref));
    this.api('luaL_checkstack')(L, args.length + 20, 0);
    for (const a of args) this.push(L, a);
    const status = this.api('lua_pcallk')(L, args.length, LUA_MULTRET, 0, 0, 0);
    if (status !== 0) {
      const message = this.type(L, -1) === T.string ? this.toByteString(L, -1) : `(error object is a ${TYPE_NAMES[this.type(L, -1)] ?? '?'} value)`;
      this.api('lua_settop')(L, top);
      throw new LuaError(message);
    }
    const n = this.api('lua_gettop')(L) - top;
    const results: LuaArg[] = new Array(n);
    for (let i = 0; i < n; i++) results[i] = this.read(L, top + 1 + i);
    this.api('lua_settop')(L, top);
    return results;
  }

  /**
   * Calls the chunk `ref` with a table of bridged functions (and, if given,
   * the value behind `extraRef` as second argument); returns a reference to
   * its first result.
   */
  callForRef(ref: number, functions: Record<string, BridgedFunction>, raw: Record<string, RawFunction>, extraRef?: number): number {
    const L = this.L;
    const top = this.api('lua_gettop')(L);
    this.api('lua_rawgeti')(L, LUA_REGISTRYINDEX, BigInt(ref));
    this.api('lua_createtable')(L, 0, 0);
    for (const [name, fn] of Object.entries(functions)) {
      this.pushBytes(L, Buffer.from(name, 'latin1'));
      this.pushFunction(L, fn);
      this.api('lua_rawset')(L, -3);
    }
    for (const [name, fn] of Object.entries(raw)) {
      this.pushBytes(L, Buffer.from(name, 'latin1'));
      this.pushRawFunction(L, fn);
      this.api('lua_rawset')(L, -3);
    }
    if (extraRef !== undefined) this.api('lua_rawgeti')(L, LUA_REGISTRYINDEX, BigInt(extraRef));
    const status = this.api('lua_pcallk')(L, extraRef === undefined ? 1 : 2, 1, 0, 0, 0);
    if (status !== 0) {
      const message = this.toByteString(L, -1);
      this.api('lua_settop')(L, top);
      throw new LuaError(message);
    }
    return this.api('luaL_ref')(L, LUA_REGISTRYINDEX);
  }

  /** Reads field `name` of the table behind `ref` into a new reference. */
  fieldRef(tableRef: number, name: string): number {
    const L = this.L;
    this.api('lua_rawgeti')(L, LUA_REGISTRYINDEX, BigInt(tableRef));
    this.pushBytes(L, Buffer.from(name, 'latin1'));
    this.api('lua_rawget')(L, -2);
    const ref = this.api('luaL_ref')(L, LUA_REGISTRYINDEX);
    this.api('lua_settop')(L, -2);
    return ref;
  }
}
