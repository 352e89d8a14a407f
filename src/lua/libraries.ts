// Installs the extra Lua libraries (docs/libraries.md) into the engine's state.
// A library is a pair `src/lua/libs/NAME.lua` + `NAME.ts`: the Lua chunk is
// called once as `chunk(js, M)`, where `js` holds the bridged JavaScript
// primitives NAME.ts defines and `M` is the runtime's table (src/lua/runtime/:
// M.suspend, M.checkstring, M.str51 …).  Before any library, the support
// chunks of src/lua/library-support/ add shared helpers to M.
import { readFileSync } from 'node:fs';
import { cgroupLibrary } from './libs/cgroup.js';
import { controlClientLibrary } from './libs/control_client.js';
import { filesLibrary } from './libs/files.js';
import { jsonLibrary } from './libs/json.js';
import { jwtLibrary } from './libs/jwt.js';
import { pgLibrary } from './libs/pg.js';
import { sodiumLibrary } from './libs/sodium.js';
import { socketLibrary } from './libs/socket.js';
import type { LibraryContext, LuaLibrary } from './library.js';

/** The libraries, in installation order. */
const LIBRARIES: readonly LuaLibrary[] = [
  filesLibrary,
  cgroupLibrary,
  // json before jwt (its encoder)
  jsonLibrary,
  sodiumLibrary,
  jwtLibrary,
  controlClientLibrary,
  socketLibrary,
  pgLibrary,
];

/**
 * Helpers the libraries share, added to M (src/lua/library-support/NAME.lua):
 * the argument checks, the metatable of objects that close what they own.
 */
const SUPPORT_CHUNKS: readonly string[] = ['argcheck', 'owning-object'];

function luaChunk(path: string): Buffer {
  return readFileSync(new URL(`../../src/lua/${path}.lua`, import.meta.url));
}

/**
 * Runs the chunk at src/lua/`folder`/`path`.lua as `chunk(js, M)`, `js`
 * being the function table behind `js`.  Its chunk name (seen in Lua error
 * positions) is `path` with `/` as `_`: `pg/array` runs as `pg_array`.
 */
function runChunk(context: LibraryContext, folder: string, path: string, js: number): void {
  const name = path.replaceAll('/', '_');
  const ref = context.lua.load(luaChunk(`${folder}/${path}`), `=${name}`);
  if (typeof ref === 'string') throw new Error(`library ${name} failed to load: ${ref}`);
  context.lua.callForRef(ref, [js, context.runtime]);
}

function installLibrary(context: LibraryContext, library: LuaLibrary): void {
  let primitives = library.primitives(context);
  if (context.host.dryRun && library.dryRun !== undefined) primitives = { ...primitives, ...library.dryRun(context, primitives) };
  const js = context.lua.functionTable(primitives, library.raw?.(context) ?? {});
  for (const part of library.parts ?? []) runChunk(context, 'libs', part, js);
  runChunk(context, 'libs', library.name, js);
}

/**
 * The support chunks, then every library (after their asynchronous set-up,
 * which may look at the config file's bytes: undefined when unreadable).
 */
export async function installLibraries(context: LibraryContext, config: Buffer | undefined): Promise<void> {
  const none = context.lua.functionTable({}, {});
  for (const chunk of SUPPORT_CHUNKS) runChunk(context, 'library-support', chunk, none);
  for (const library of LIBRARIES) await library.prepare?.(config);
  for (const library of LIBRARIES) installLibrary(context, library);
}

/** The daemon shuts down: every library closes what it holds open. */
export function shutdownLibraries(): void {
  for (const library of LIBRARIES) library.shutdown?.();
}
