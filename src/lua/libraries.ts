// Installs the extra Lua libraries (docs/libraries.md) into the engine's state.
// A library is a Lua chunk `src/lua/libs/NAME.lua`, called once as
// `chunk(js, M)`: `js` holds its bridged JavaScript primitives, `M` is the
// runtime's table (runtime.lua: M.suspend, M.checkstring, M.str51 …).
import { readFileSync } from 'node:fs';
import { cgroupLibrary } from './cgroup.js';
import { argcheckLibrary } from './libs/argcheck.js';
import { controlClientLibrary } from './libs/control_client.js';
import { jsonLibrary } from './libs/json.js';
import { jwtLibrary } from './libs/jwt.js';
import { pgLibrary } from './libs/pg.js';
import { pgArrayLibrary } from './libs/pg_array.js';
import { socketLibrary } from './libs/socket.js';
import { sodiumLibrary } from './libs/sodium.js';
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
  /**
   * In a dry run (`qrelay check`): replacements for the primitives with side
   * effects, which record what they did not do with `engine.refuse`.
   */
  readonly dryRun?: (context: LibraryContext, real: Readonly<Record<string, BridgedFunction>>) => Record<string, BridgedFunction>;
  /** Asynchronous set-up that must finish before installation (e.g. loading libsodium). */
  readonly prepare?: () => Promise<void>;
}

/** The libraries, in installation order. */
const LIBRARIES: readonly LuaLibrary[] = [
  cgroupLibrary,
  // argcheck before the libraries using its helpers; json before jwt (its encoder)
  argcheckLibrary,
  jsonLibrary,
  sodiumLibrary,
  jwtLibrary,
  controlClientLibrary,
  socketLibrary,
  // pg_array before pg (which puts the helpers into its table)
  pgArrayLibrary,
  pgLibrary,
];

function libraryChunk(name: string): Buffer {
  return readFileSync(new URL(`../../src/lua/libs/${name}.lua`, import.meta.url));
}

export function installLibrary(context: LibraryContext, library: LuaLibrary): void {
  const ref = context.lua.load(libraryChunk(library.name), `=${library.name}`);
  if (typeof ref === 'string') throw new Error(`library ${library.name} failed to load: ${ref}`);
  let primitives = library.primitives(context);
  if (context.engine.dryRun && library.dryRun !== undefined) primitives = { ...primitives, ...library.dryRun(context, primitives) };
  context.lua.callForRef(ref, primitives, library.raw?.(context) ?? {}, context.runtime);
}

export async function installLibraries(context: LibraryContext): Promise<void> {
  for (const library of LIBRARIES) await library.prepare?.();
  for (const library of LIBRARIES) installLibrary(context, library);
}
