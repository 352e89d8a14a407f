// A thin, binary-safe bridge over the raw Lua 5.4 C API that wasmoon's
// WebAssembly module exports.  Only plain data crosses it: nil, booleans,
// numbers, byte strings (one JS char per byte) and copies of plain
// arrays/objects.  No JavaScript object is ever pushed into Lua, so scripts
// cannot reach JavaScript (see platform.md, "Sandbox hole").
import { createLuaModule, LUA_MULTRET, LUA_REGISTRYINDEX, LUA_RIDX_GLOBALS, T, TYPE_NAMES, type EmscriptenModule, type LuaC } from './lua-c-api.js';
import { RunLimits } from './run-limits.js';
import { LuaError, LuaOpaque, type BridgedFunction, type LuaArg, type LuaPushable } from './lua-values.js';

/** A function that works on the Lua stack itself; returns the result count. */
export type RawFunction = (L: number, state: LuaState) => number;

/**
 * Buffer's latin1 codecs applied to the WebAssembly heap itself: a byte
 * string is read from and written to Lua's memory without a Buffer object
 * in between (the same bytes as Buffer.from(…, 'latin1') and toString).
 */
const latin1 = Buffer.prototype as unknown as {
  latin1Slice(this: Uint8Array, start: number, end: number): string;
  latin1Write(this: Uint8Array, text: string, offset: number, length: number): number;
};

/** Text for a message pushed to Lua: bytes as given, or UTF-8 for wider text. */
function textBytes(s: string): Buffer {
  return /[^\u0000-\u00ff]/.test(s) ? Buffer.from(s, 'utf8') : Buffer.from(s, 'latin1');
}

export class LuaState {
  readonly L: number;
  private readonly m: EmscriptenModule;
  private scratch = 0;
  private scratchSize = 0;
  private readonly lengthPtr: number;
  private readonly functionPointers: number[] = [];
  private readonly c: LuaC;
  private readonly limits: RunLimits;
  /** Set once a call was stopped from outside (abandon): why no call may run. */
  private abandoned: string | undefined = undefined;

  private constructor(module: EmscriptenModule, c: LuaC) {
    this.m = module;
    this.c = c;
    this.L = module._luaL_newstate!();
    this.limits = new RunLimits(module, c, (L, message) => this.pushText(L, message));
    this.c.lua_setallocf(this.L, this.limits.allocator, 0);
    module._luaL_openlibs!(this.L);
    this.lengthPtr = this.c.malloc(8);
    // the standard collectgarbage, kept before any script can replace it
    this.c.lua_rawgeti(this.L, LUA_REGISTRYINDEX, BigInt(LUA_RIDX_GLOBALS));
    this.pushBytes(this.L, Buffer.from('collectgarbage'));
    this.c.lua_rawget(this.L, -2);
    this.limits.collectGarbageRef = this.c.luaL_ref(this.L, LUA_REGISTRYINDEX);
    this.c.lua_settop(this.L, -2);
  }

  static async create(environment: Record<string, string>): Promise<LuaState> {
    const { module, c } = await createLuaModule(environment);
    return new LuaState(module, c);
  }

  /** The emscripten file system behind Lua's `io` (used to stage real files). */
  get fs(): unknown {
    return (this.m as unknown as { FS: unknown }).FS;
  }

  /** The scratch block, grown to hold at least `need` bytes. */
  private scratchFor(need: number): number {
    if (need > this.scratchSize) {
      if (this.scratch !== 0) this.c.free(this.scratch);
      this.scratchSize = Math.max(need, 256, this.scratchSize * 2);
      this.scratch = this.c.malloc(this.scratchSize);
    }
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
    return latin1.latin1Slice.call(this.m.HEAPU8, p, p + n);
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
    const p = this.scratchFor(bytes.length + 1);
    this.m.HEAPU8.set(bytes, p);
    this.c.lua_pushlstring(L, p, bytes.length);
  }

  /** Pushes a byte string (one char per byte, as Buffer's latin1). */
  pushByteString(L: number, text: string): void {
    const p = this.scratchFor(text.length + 1);
    latin1.latin1Write.call(this.m.HEAPU8, text, p, text.length);
    this.c.lua_pushlstring(L, p, text.length);
  }

  push(L: number, v: LuaPushable): void {
    if (v === undefined || v === null) this.c.lua_pushnil(L);
    else if (typeof v === 'boolean') this.c.lua_pushboolean(L, v ? 1 : 0);
    else if (typeof v === 'number') {
      if (Number.isSafeInteger(v)) this.c.lua_pushinteger(L, BigInt(v));
      else this.c.lua_pushnumber(L, v);
    } else if (typeof v === 'bigint') this.c.lua_pushinteger(L, BigInt.asIntN(64, v));
    else if (typeof v === 'string') this.pushByteString(L, v);
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
        this.pushByteString(L, key);
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
        // a C function is only given LUA_MINSTACK (20) free slots
        this.c.luaL_checkstack(L2, result.length, 0);
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

  /** A new full userdata without metatable (no user values, no memory block). */
  newBareUserdata(L: number): void {
    this.c.lua_newuserdatauv(L, 0, 0);
  }

  /** A new full userdata with the metatable at `mtIndex` (for Lua-side objects). */
  newUserdata(L: number, mtIndex: number): void {
    const abs = this.c.lua_absindex(L, mtIndex);
    this.c.lua_newuserdatauv(L, 0, 0);
    this.c.lua_pushvalue(L, abs);
    this.c.lua_setmetatable(L, -2);
  }

  // ---- calling Lua ------------------------------------------------------

  /** Caps what the Lua state may hold (see RunLimits.limitMemory). */
  limitMemory(bytes: number): void {
    this.limits.limitMemory(bytes);
  }

  /** Bytes the Lua state holds now. */
  get memoryUsed(): number {
    return this.limits.memoryUsed;
  }

  /** Stops Lua code that runs longer than `ms` without pausing (see RunLimits.limitRunTime). */
  limitRunTime(ms: number): void {
    this.limits.limitRunTime(this.L, ms);
  }

  /**
   * A call into Lua was stopped from outside and never returned
   * (src/streams/stuck-code.ts): the state is half way through it and must
   * not run again.  Every later call throws LuaError(`reason`) at once.
   */
  abandon(reason: string): void {
    this.abandoned ??= reason;
  }

  /** Whether a call into Lua is under way (or was stopped from outside: it never left). */
  get running(): boolean {
    return this.limits.running;
  }

  /** Why the last call was stopped (run-time limit or heap cap: its message), once. */
  takeStopped(): string | undefined {
    return this.limits.takeStopped();
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

  /** Gives the coroutine at `idx` of `L`'s stack the run-time hook (see RunLimits.hookMain). */
  hookThread(L: number, idx: number): void {
    this.limits.hookThread(this.c.lua_tothread(L, idx));
  }

  /**
   * Calls the function behind `ref` in protected mode; throws LuaError with
   * its message.  `mainHook` false: the call runs only the runtime's own
   * code on the main thread (see RunLimits.hookMain).
   */
  call(ref: number, args: readonly LuaPushable[], mainHook = true): LuaArg[] {
    if (this.abandoned !== undefined) throw new LuaError(this.abandoned);
    const L = this.L;
    this.limits.hookMain(mainHook);
    const top = this.c.lua_gettop(L);
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
    this.c.luaL_checkstack(L, args.length + 20, 0);
    for (const a of args) this.push(L, a);
    this.limits.enter(this.L);
    let status: number;
    try {
      status = this.c.lua_pcallk(L, args.length, LUA_MULTRET, 0, 0, 0);
    } finally {
      this.limits.leave();
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

  /** A new table of bridged functions (the `js` a chunk gets); returns a reference to it. */
  functionTable(functions: Record<string, BridgedFunction>, raw: Record<string, RawFunction>): number {
    const L = this.L;
    this.c.lua_createtable(L, 0, 0);
    for (const [name, fn] of Object.entries(functions)) {
      this.pushByteString(L, name);
      this.pushFunction(L, fn);
      this.c.lua_rawset(L, -3);
    }
    for (const [name, fn] of Object.entries(raw)) {
      this.pushByteString(L, name);
      this.pushRawFunction(L, fn);
      this.c.lua_rawset(L, -3);
    }
    return this.c.luaL_ref(L, LUA_REGISTRYINDEX);
  }

  /**
   * Calls the chunk `ref` with the values behind the references `args`
   * (e.g. a function table and the runtime's table); returns a reference
   * to its first result.
   */
  callForRef(ref: number, args: readonly number[]): number {
    if (this.abandoned !== undefined) throw new LuaError(this.abandoned);
    const L = this.L;
    const top = this.c.lua_gettop(L);
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(ref));
    for (const arg of args) this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(arg));
    this.limits.enter(this.L);
    let status: number;
    try {
      status = this.c.lua_pcallk(L, args.length, 1, 0, 0, 0);
    } finally {
      this.limits.leave();
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
    this.pushByteString(L, name);
    this.c.lua_rawget(L, -2);
    const ref = this.c.luaL_ref(L, LUA_REGISTRYINDEX);
    this.c.lua_settop(L, -2);
    return ref;
  }
}
