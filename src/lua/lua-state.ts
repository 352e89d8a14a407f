// A thin, binary-safe bridge over the raw Lua 5.4 C API that wasmoon's
// WebAssembly module exports.  Only plain data crosses it: nil, booleans,
// numbers, byte strings (one JS char per byte) and copies of plain
// arrays/objects.  No JavaScript object is ever pushed into Lua, so scripts
// cannot reach JavaScript (see platform.md, "Sandbox hole").
import { LuaWasm } from 'wasmoon';
import { HeapLimit } from './heap-limit.js';

const LUA_REGISTRYINDEX = -1001000;
const LUA_MULTRET = -1;
const LUA_RIDX_GLOBALS = 2;
/** How often (in VM instructions) the hook checks the run-time limit and the heap cap. */
const HOOK_INSTRUCTIONS = 1000;
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

/** The raw C functions of the Lua build that the bridge calls. */
interface LuaC {
  readonly free: (...args: (number | bigint)[]) => number;
  readonly luaL_checkstack: (...args: (number | bigint)[]) => number;
  readonly luaL_loadbufferx: (...args: (number | bigint)[]) => number;
  readonly luaL_ref: (...args: (number | bigint)[]) => number;
  readonly luaL_where: (...args: (number | bigint)[]) => number;
  readonly lua_absindex: (...args: (number | bigint)[]) => number;
  readonly lua_concat: (...args: (number | bigint)[]) => number;
  readonly lua_createtable: (...args: (number | bigint)[]) => number;
  readonly lua_error: (...args: (number | bigint)[]) => number;
  readonly lua_gettop: (...args: (number | bigint)[]) => number;
  readonly lua_newuserdatauv: (...args: (number | bigint)[]) => number;
  readonly lua_next: (...args: (number | bigint)[]) => number;
  readonly lua_pcallk: (...args: (number | bigint)[]) => number;
  readonly lua_sethook: (...args: (number | bigint)[]) => number;
  readonly lua_isyieldable: (...args: (number | bigint)[]) => number;
  readonly lua_yieldk: (...args: (number | bigint)[]) => number;
  readonly lua_pushboolean: (...args: (number | bigint)[]) => number;
  readonly lua_pushcclosure: (...args: (number | bigint)[]) => number;
  readonly lua_pushinteger: (...args: (number | bigint)[]) => number;
  readonly lua_pushlstring: (...args: (number | bigint)[]) => number;
  readonly lua_pushnil: (...args: (number | bigint)[]) => number;
  readonly lua_pushnumber: (...args: (number | bigint)[]) => number;
  readonly lua_pushvalue: (...args: (number | bigint)[]) => number;
  readonly lua_rawget: (...args: (number | bigint)[]) => number;
  readonly lua_rawgeti: (...args: (number | bigint)[]) => number;
  readonly lua_rawset: (...args: (number | bigint)[]) => number;
  readonly lua_rawseti: (...args: (number | bigint)[]) => number;
  readonly lua_setallocf: (...args: (number | bigint)[]) => number;
  readonly lua_setmetatable: (...args: (number | bigint)[]) => number;
  readonly lua_settop: (...args: (number | bigint)[]) => number;
  readonly lua_toboolean: (...args: (number | bigint)[]) => number;
  readonly lua_tolstring: (...args: (number | bigint)[]) => number;
  readonly lua_tonumberx: (...args: (number | bigint)[]) => number;
  readonly lua_type: (...args: (number | bigint)[]) => number;
  readonly malloc: (...args: (number | bigint)[]) => number;
  readonly realloc: (...args: (number | bigint)[]) => number;
}

const C_FUNCTIONS: readonly (keyof LuaC)[] = ['free', 'luaL_checkstack', 'luaL_loadbufferx', 'luaL_ref', 'luaL_where', 'lua_absindex', 'lua_concat', 'lua_createtable', 'lua_error', 'lua_gettop', 'lua_newuserdatauv', 'lua_next', 'lua_pcallk', 'lua_pushboolean', 'lua_pushcclosure', 'lua_pushinteger', 'lua_pushlstring', 'lua_pushnil', 'lua_pushnumber', 'lua_pushvalue', 'lua_rawget', 'lua_rawgeti', 'lua_rawset', 'lua_rawseti', 'lua_setallocf', 'lua_isyieldable', 'lua_sethook', 'lua_setmetatable', 'lua_settop', 'lua_yieldk', 'lua_toboolean', 'lua_tolstring', 'lua_tonumberx', 'lua_type', 'malloc', 'realloc'];

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
  return /[^\u0000-\u00ff]/.test(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'latin1');
}

/**
 * wasmoon's build wraps every exported C function in a checking wrapper that
 * formats an assertion message on each call — a large share of a mail's
 * policy cost.  The bridge calls the WebAssembly exports directly instead,
 * taken from the instance while wasmoon creates it (the wrappers are the
 * fallback if that ever fails).
 */
async function capturingExports<T>(create: () => Promise<T>): Promise<{ value: T; exports: Record<string, unknown> | undefined }> {
  const original = WebAssembly.instantiate;
  let exports: Record<string, unknown> | undefined;
  const capture = (result: WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance): void => {
    const instance = result instanceof WebAssembly.Instance ? result : result.instance;
    if (instance?.exports && typeof instance.exports['lua_newstate'] === 'function') exports = instance.exports as Record<string, unknown>;
  };
  WebAssembly.instantiate = (async (...args: Parameters<typeof WebAssembly.instantiate>) => {
    const result = await (original as (...a: unknown[]) => Promise<WebAssembly.WebAssemblyInstantiatedSource | WebAssembly.Instance>)(...args);
    capture(result);
    return result;
  }) as typeof WebAssembly.instantiate;
  try {
    return { value: await create(), exports };
  } finally {
    WebAssembly.instantiate = original;
  }
}

function bindFunctions(module: EmscriptenModule, exports: Record<string, unknown> | undefined): LuaC {
  const functions: Record<string, (...args: (number | bigint)[]) => number> = {};
  for (const name of C_FUNCTIONS) {
    const raw = exports?.[name];
    functions[name] = typeof raw === 'function' ? (raw as (...args: (number | bigint)[]) => number) : module[`_${name}`]!;
  }
  return functions as unknown as LuaC;
}

export class LuaState {
  readonly L: number;
  private readonly m: EmscriptenModule;
  private scratch = 0;
  private scratchSize = 0;
  private readonly lengthPtr: number;
  private readonly functionPointers: number[] = [];
  private readonly c: LuaC;
  /** When the outermost call from JavaScript into Lua started (performance.now()). */
  private runStarted = 0;
  private callDepth = 0;
  /** Why the current run was stopped (run-time limit, heap cap), once set. */
  private stopped: string | undefined;
  private readonly heap = new HeapLimit();
  private readonly collectGarbageRef: number;

  private constructor(module: EmscriptenModule, exports: Record<string, unknown> | undefined) {
    this.m = module;
    this.c = bindFunctions(module, exports);
    this.L = module._luaL_newstate!();
    const allocator = module.addFunction(this.heap.allocator(this.c.realloc, this.c.free), 'iiiii');
    this.functionPointers.push(allocator);
    this.c.lua_setallocf(this.L, allocator, 0);
    module._luaL_openlibs!(this.L);
    this.lengthPtr = this.c.malloc(8);
    // the standard collectgarbage, kept before any script can replace it
    this.c.lua_rawgeti(this.L, LUA_REGISTRYINDEX, BigInt(LUA_RIDX_GLOBALS));
    this.pushBytes(this.L, Buffer.from('collectgarbage'));
    this.c.lua_rawget(this.L, -2);
    this.collectGarbageRef = this.c.luaL_ref(this.L, LUA_REGISTRYINDEX);
    this.c.lua_settop(this.L, -2);
  }

  static async create(environment: Record<string, string>): Promise<LuaState> {
    const { value: wasm, exports } = await capturingExports(() => LuaWasm.initialize(undefined, environment));
    return new LuaState(wasm.module as unknown as EmscriptenModule, exports);
  }

  /** The emscripten file system behind Lua's `io` (used to stage real files). */
  get fs(): unknown {
    return (this.m as unknown as { FS: unknown }).FS;
  }

  private bytesToScratch(bytes: Buffer, terminate: boolean): number {
    const need = bytes.length + 1;
    if (need > this.scratchSize) {
      if (this.scratch !== 0) this.c.free(this.scratch);
      this.scratchSize = Math.max(need, 256, this.scratchSize * 2);
      this.scratch = this.c.malloc(this.scratchSize);
    }
    this.m.HEAPU8.set(bytes, this.scratch);
    if (terminate) this.m.HEAPU8[this.scratch + bytes.length] = 0;
    return this.scratch;
  }

  // ---- reading values ---------------------------------------------------

  type(L: number, idx: number): number {
    return this.c.lua_type(L, idx);
  }

  toBytes(L: number, idx: number): Buffer {
    const p = this.c.lua_tolstring(L, idx, this.lengthPtr);
    const n = this.m.HEAPU32[this.lengthPtr >> 2]!;
    return Buffer.from(this.m.HEAPU8.subarray(p, p + n));
  }

  toByteString(L: number, idx: number): string {
    const p = this.c.lua_tolstring(L, idx, this.lengthPtr);
    const n = this.m.HEAPU32[this.lengthPtr >> 2]!;
    return Buffer.from(this.m.HEAPU8.buffer, p, n).toString('latin1');
  }

  read(L: number, idx: number): LuaArg {
    const t = this.type(L, idx);
    switch (t) {
      case T.nil:
        return undefined;
      case T.boolean:
        return this.c.lua_toboolean(L, idx) !== 0;
      case T.number:
        return this.c.lua_tonumberx(L, idx, 0);
      case T.string:
        return this.toByteString(L, idx);
      default:
        return new LuaOpaque(TYPE_NAMES[t] ?? 'unknown');
    }
  }

  private readArgs(L: number): LuaArg[] {
    const n = this.c.lua_gettop(L);
    const args: LuaArg[] = new Array(n);
    for (let i = 0; i < n; i++) args[i] = this.read(L, i + 1);
    return args;
  }

  /** A Lua table as plain JS data (nested tables become nested objects). */
  readTable(L: number, idx: number, depth = 0): Map<LuaArg, unknown> {
    const abs = this.c.lua_absindex(L, idx);
    const out = new Map<LuaArg, unknown>();
    this.c.lua_pushnil(L);
    while (this.c.lua_next(L, abs) !== 0) {
      const key = this.read(L, -2);
      const value = this.type(L, -1) === T.table && depth < 100 ? this.readTable(L, -1, depth + 1) : this.read(L, -1);
      out.set(key, value);
      this.c.lua_settop(L, -2);
    }
    return out;
  }

  // ---- pushing values ---------------------------------------------------

  pushBytes(L: number, bytes: Buffer): void {
    const p = this.bytesToScratch(bytes, false);
    this.c.lua_pushlstring(L, p, bytes.length);
  }

  push(L: number, v: LuaPushable): void {
    if (v === undefined || v === null) this.c.lua_pushnil(L);
    else if (typeof v === 'boolean') this.c.lua_pushboolean(L, v ? 1 : 0);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) this.c.lua_pushinteger(L, BigInt(v));
      else this.c.lua_pushnumber(L, v);
    } else if (typeof v === 'bigint') this.c.lua_pushinteger(L, BigInt.asIntN(64, v));
    else if (typeof v === 'string') this.pushBytes(L, Buffer.from(v, 'latin1'));
    else if (Buffer.isBuffer(v)) this.pushBytes(L, v);
    else if (Array.isArray(v)) {
      this.c.lua_createtable(L, v.length, 0);
      for (let i = 0; i < v.length; i++) {
        this.push(L, v[i] as LuaPushable);
        this.c.lua_rawseti(L, -2, BigInt(i + 1));
      }
    } else {
      const entries = Object.entries(v as Record<string, LuaPushable>);
      this.c.lua_createtable(L, 0, entries.length);
      for (const [key, value] of entries) {
        this.pushBytes(L, Buffer.from(key, 'latin1'));
        this.push(L, value);
        this.c.lua_rawset(L, -3);
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
      this.c.luaL_where(L, 1);
      this.pushText(L, message);
      this.c.lua_concat(L, 2);
    } else {
      this.pushText(L, message);
    }
    return this.c.lua_error(L);
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
    this.c.lua_pushcclosure(L, pointer, 0);
  }

  /** A new full userdata with the metatable at `mtIndex` (for Lua-side objects). */
  newUserdata(L: number, mtIndex: number): void {
    const abs = this.c.lua_absindex(L, mtIndex);
    this.c.lua_newuserdatauv(L, 0, 0);
    this.c.lua_pushvalue(L, abs);
    this.c.lua_setmetatable(L, -2);
  }

  // ---- calling Lua ------------------------------------------------------

  /** A call from JavaScript into Lua begins; the outermost one starts the clock and the heap cap. */
  private enter(): void {
    if (this.callDepth++ === 0) {
      this.runStarted = performance.now();
      this.stopped = undefined;
      this.collectNearCap(this.L);
      this.heap.begin();
    }
  }

  /** A full collection when the heap is near the cap (see HeapLimit.shouldCollect). */
  private collectNearCap(L: number): void {
    if (!this.heap.shouldCollect()) return;
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.collectGarbageRef));
    if (this.c.lua_pcallk(L, 0, 0, 0, 0, 0) !== 0) this.c.lua_settop(L, -2);
    this.heap.collected();
  }

  private leave(): void {
    if (--this.callDepth === 0) this.heap.end();
  }

  /**
   * Caps what the Lua state may hold.  An allocation past the cap fails
   * (Lua's "not enough memory" error), and the run that hit it is stopped
   * at the next hook check even if the script catches that error.
   */
  limitMemory(bytes: number): void {
    this.heap.limit = bytes;
  }

  /** Bytes the Lua state holds now. */
  get memoryUsed(): number {
    return this.heap.used;
  }

  /**
   * Stops Lua code that runs longer than `ms` without returning to the
   * event loop (a handler stuck in a loop), so one bad mail cannot stall
   * every other one, and code that went on after hitting the heap cap.
   * Checked every 1000 VM instructions by a hook that every coroutine
   * inherits (scripts cannot remove it: runtime.lua wraps debug.sethook).
   * Inside a coroutine the hook yields — no `pcall` can catch that — and
   * the caller learns of it through `takeStopped()`; elsewhere (the config
   * load) it raises an error.
   */
  limitRunTime(ms: number): void {
    const LUA_MASKCOUNT = 8;
    const tooLong = `Lua code ran for more than ${ms / 1000} s without pausing`;
    const hook = this.m.addFunction((L: number) => {
      if (this.heap.exceeded) this.stopped = this.heap.message();
      else if (performance.now() - this.runStarted > ms) this.stopped = tooLong;
      else {
        this.collectNearCap(L);
        return 0;
      }
      if (this.c.lua_isyieldable(L) !== 0) return this.c.lua_yieldk(L, 0, 0, 0);
      this.pushText(L, this.stopped);
      return this.c.lua_error(L);
    }, 'vii');
    this.functionPointers.push(hook);
    this.c.lua_sethook(this.L, hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
  }

  /** Why the last call was stopped (run-time limit or heap cap: its message), once. */
  takeStopped(): string | undefined {
    const message = this.stopped ?? (this.heap.reached ? this.heap.message() : undefined);
    this.stopped = undefined;
    this.heap.forget();
    return message;
  }

  /** Compiles a chunk; returns a registry reference to the function, or the error text. */
  load(source: Buffer, chunkName: string): number | string {
    const L = this.L;
    const top = this.c.lua_gettop(L);
    const name = Buffer.from(chunkName + '\0', 'latin1');
    const malloc = this.c.malloc;
    const namePtr = malloc(name.length);
    this.m.HEAPU8.set(name, namePtr);
    const srcPtr = malloc(source.length + 1);
    this.m.HEAPU8.set(source, srcPtr);
    const status = this.c.luaL_loadbufferx(L, srcPtr, source.length, namePtr, 0);
    this.c.free(srcPtr);
    this.c.free(namePtr);
    if (status !== 0) {
      const message = this.toByteString(L, -1);
      this.c.lua_settop(L, top);
      return message;
    }
    return this.c.luaL_ref(L, LUA_REGISTRYINDEX);
  }

  /** Calls the function behind `ref` in protected mode; throws LuaError with its message. */
  call(ref: number, args: readonly LuaPushable[]): LuaArg[] {
    const L = this.L;
    const top = this.c.lua_gettop(L);
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
    this.c.luaL_checkstack(L, args.length + 20, 0);
    for (const a of args) this.push(L, a);
    this.enter();
    let status: number;
    try {
      status = this.c.lua_pcallk(L, args.length, LUA_MULTRET, 0, 0, 0);
    } finally {
      this.leave();
    }
    if (status !== 0) {
      const message = this.type(L, -1) === T.string ? this.toByteString(L, -1) : `(error object is a ${TYPE_NAMES[this.type(L, -1)] ?? '?'} value)`;
      this.c.lua_settop(L, top);
      throw new LuaError(message);
    }
    const n = this.c.lua_gettop(L) - top;
    const results: LuaArg[] = new Array(n);
    for (let i = 0; i < n; i++) results[i] = this.read(L, top + 1 + i);
    this.c.lua_settop(L, top);
    return results;
  }

  /**
   * Calls the chunk `ref` with a table of bridged functions (and, if given,
   * the value behind `extraRef` as second argument); returns a reference to
   * its first result.
   */
  callForRef(ref: number, functions: Record<string, BridgedFunction>, raw: Record<string, RawFunction>, extraRef?: number): number {
    const L = this.L;
    const top = this.c.lua_gettop(L);
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
    this.c.lua_createtable(L, 0, 0);
    for (const [name, fn] of Object.entries(functions)) {
      this.pushBytes(L, Buffer.from(name, 'latin1'));
      this.pushFunction(L, fn);
      this.c.lua_rawset(L, -3);
    }
    for (const [name, fn] of Object.entries(raw)) {
      this.pushBytes(L, Buffer.from(name, 'latin1'));
      this.pushRawFunction(L, fn);
      this.c.lua_rawset(L, -3);
    }
    if (extraRef !== undefined) this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(extraRef));
    this.enter();
    let status: number;
    try {
      status = this.c.lua_pcallk(L, extraRef === undefined ? 1 : 2, 1, 0, 0, 0);
    } finally {
      this.leave();
    }
    if (status !== 0) {
      const message = this.toByteString(L, -1);
      this.c.lua_settop(L, top);
      throw new LuaError(message);
    }
    return this.c.luaL_ref(L, LUA_REGISTRYINDEX);
  }

  /** Reads field `name` of the table behind `ref` into a new reference. */
  fieldRef(tableRef: number, name: string): number {
    const L = this.L;
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(tableRef));
    this.pushBytes(L, Buffer.from(name, 'latin1'));
    this.c.lua_rawget(L, -2);
    const ref = this.c.luaL_ref(L, LUA_REGISTRYINDEX);
    this.c.lua_settop(L, -2);
    return ref;
  }
}
