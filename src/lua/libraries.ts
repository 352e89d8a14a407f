// Installs the extra Lua libraries (lua-libs.md) into the engine's state.
import type { LuaState } from './lua-state.js';
import type { LuaEngine } from './engine.js';

export interface LibraryContext {
  readonly lua: LuaState;
  /** Registry reference of the runtime's entry table (M in runtime.lua). */
  readonly runtime: number;
  readonly engine: LuaEngine;
}

export function installLibraries(_context: LibraryContext): void {
  // Filled in by the library modules (socket, control_client, sodium, json, jwt, pg).
}
