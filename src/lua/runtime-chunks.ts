// Loads qrelay's Lua runtime into a fresh state: compat.lua (the Lua 5.1
// dialect configs rely on), then the runtime's chunks in order, each run
// once as chunk(js, M) before any script code.  Returns the entry points
// the engine calls.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_DIR } from '../package-dir.cjs';
import type { LuaState, RawFunction } from './lua-state.js';
import type { BridgedFunction } from './lua-values.js';

/** The runtime's chunks (src/lua/runtime/NAME.lua), in the order they run; base.lua makes M. */
const RUNTIME_CHUNKS = ['base', 'addresses', 'startup', 'actions', 'mail', 'outcome', 'driver', 'environment'] as const;

/** The functions of M the engine calls (registry references). */
export interface RuntimeEntries {
  /** Registry reference of M itself, for the libraries. */
  readonly table: number;
  /** startup.lua */
  readonly load_config: number;
  readonly finish_startup: number;
  readonly settings: number;
  /** driver.lua */
  readonly dispatch: number;
  readonly resume: number;
  readonly close: number;
  readonly end_mails: number;
  readonly reload: number;
  readonly run_task: number;
}

const ENTRY_NAMES = ['load_config', 'finish_startup', 'settings', 'dispatch', 'resume', 'close', 'end_mails', 'reload', 'run_task'] as const;

function chunk(lua: LuaState, path: string, name: string): number {
  const ref = lua.load(readFileSync(join(PACKAGE_DIR, 'src', 'lua', `${path}.lua`)), `=${name}`);
  if (typeof ref === 'string') throw new Error(`internal Lua chunk failed to load: ${ref}`);
  return ref;
}

/** How many fresh userdata one `newuds()` returns (within the stack space a C function is given). */
const USERDATA_BATCH = 16;

/** Every runtime chunk gets the same `js`: these primitives and the raw `newud`, `hook_thread` and `newuds`. */
export function loadRuntime(lua: LuaState, primitives: Record<string, BridgedFunction>): RuntimeEntries {
  const raw: Record<string, RawFunction> = {
    newud: (L, state) => {
      state.newUserdata(L, 1);
      return 1;
    },
    // hook_thread(co): the run-time hook for a coroutine of the driver (driver.lua's start)
    hook_thread: (L, state) => {
      state.hookThread(L, 1);
      return 0;
    },
    // USERDATA_BATCH userdata without metatable (base.lua's M.newud hands them out)
    newuds: (L, state) => {
      for (let i = 0; i < USERDATA_BATCH; i++) state.newBareUserdata(L);
      return USERDATA_BATCH;
    },
  };
  const js = lua.functionTable(primitives, raw);
  lua.callForRef(chunk(lua, 'compat', 'compat'), [js]);
  const [first, ...rest] = RUNTIME_CHUNKS;
  const table = lua.callForRef(chunk(lua, `runtime/${first}`, 'runtime'), [js]);
  for (const name of rest) lua.callForRef(chunk(lua, `runtime/${name}`, 'runtime'), [js, table]);
  const entries: Record<string, number> = { table };
  for (const name of ENTRY_NAMES) entries[name] = lua.fieldRef(table, name);
  return entries as unknown as RuntimeEntries;
}
