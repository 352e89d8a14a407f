// Installs the extra Lua libraries (lua-libs.md) into the engine's state.
// A library is a Lua chunk `src/lua/libs/NAME.lua`, called once as
// `chunk(js, M)`: `js` holds its bridged JavaScript primitives, `M` is the
// runtime's table (runtime.lua: M.suspend, M.checkstring, M.str51 …).
import { readFileSync } from 'node:fs';
import type { LuaEngine } from './engine.js';
import type { BridgedFunction, LuaState, RawFunction } from './lua-state.js';

export interface LibraryContext {
  readonly lua: LuaState;
  /** Registry reference of the runtime's entry table (M in runtime.lua). */
  readonly runtime: number;
  readonly engine: LuaEngine;
}

export interface LuaLibrary {
  /** The chunk's file name under src/lua/libs/, without `.lua`. */
  readonly name: string;
  readonly primitives: (context: LibraryContext) => Record<string, BridgedFunction>;
  readonly raw?: (context: LibraryContext) => Record<string, RawFunction>;
}

/** The libraries, in installation order. */
const LIBRARIES: readonly LuaLibrary[] = [];

function libraryChunk(name: string): Buffer {
  return readFileSync(new URL(`../../src/lua/libs/${name}.lua`, import.meta.url));
}

export function installLibrary(context: LibraryContext, library: LuaLibrary): void {
  const ref = context.lua.load(libraryChunk(library.name), `=${library.name}`);
  if (typeof ref === 'string') throw new Error(`library ${library.name} failed to load: ${ref}`);
  context.lua.callForRef(ref, library.primitives(context), library.raw?.(context) ?? {}, context.runtime);
}

export function installLibraries(context: LibraryContext): void {
  for (const library of LIBRARIES) installLibrary(context, library);
}
