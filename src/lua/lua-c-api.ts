// The raw C functions of wasmoon's Lua build that the bridge (lua-state.ts)
// calls, bound straight to the WebAssembly exports.
import { packageRequire } from '../package-dir.cjs';

// required, not imported: see src/package-dir.cts
const { LuaWasm } = packageRequire('wasmoon') as typeof import('wasmoon');

export const LUA_REGISTRYINDEX = -1001000;
export const LUA_MULTRET = -1;
export const LUA_RIDX_GLOBALS = 2;
/** lua_type's results. */
export const T = { nil: 0, boolean: 1, lightuserdata: 2, number: 3, string: 4, table: 5, function: 6, userdata: 7, thread: 8 } as const;
/** The type names Lua reports, by lua_type's result. */
export const TYPE_NAMES = ['nil', 'boolean', 'userdata', 'number', 'string', 'table', 'function', 'userdata', 'thread'] as const;

const C_FUNCTIONS = ['free', 'luaL_checkstack', 'luaL_loadbufferx', 'luaL_ref', 'luaL_where', 'lua_absindex', 'lua_concat', 'lua_createtable', 'lua_error', 'lua_gettop', 'lua_newuserdatauv', 'lua_next', 'lua_pcallk', 'lua_pushboolean', 'lua_pushcclosure', 'lua_pushinteger', 'lua_pushlstring', 'lua_pushnil', 'lua_pushnumber', 'lua_pushvalue', 'lua_rawget', 'lua_rawgeti', 'lua_rawset', 'lua_rawseti', 'lua_setallocf', 'lua_isyieldable', 'lua_sethook', 'lua_setmetatable', 'lua_settop', 'lua_yieldk', 'lua_toboolean', 'lua_tolstring', 'lua_tothread', 'lua_tonumberx', 'lua_type', 'malloc', 'realloc'] as const;

type CFunction = (...args: (number | bigint)[]) => number;

/** The raw C functions of the Lua build that the bridge calls. */
export type LuaC = Readonly<Record<(typeof C_FUNCTIONS)[number], CFunction>>;

export interface EmscriptenModule {
  HEAPU8: Uint8Array;
  HEAPU32: Uint32Array;
  addFunction(fn: (...args: number[]) => number, signature: string): number;
  [name: `_${string}`]: CFunction;
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
  const functions: Record<string, CFunction> = {};
  for (const name of C_FUNCTIONS) {
    const raw = exports?.[name];
    functions[name] = typeof raw === 'function' ? (raw as CFunction) : module[`_${name}`]!;
  }
  return functions as LuaC;
}

/** Creates wasmoon's Lua module (with the process environment Lua's os.getenv sees) and binds its C functions. */
export async function createLuaModule(environment: Record<string, string>): Promise<{ module: EmscriptenModule; c: LuaC }> {
  const { value: wasm, exports } = await capturingExports(() => LuaWasm.initialize(undefined, environment));
  const module = wasm.module as unknown as EmscriptenModule;
  return { module, c: bindFunctions(module, exports) };
}
