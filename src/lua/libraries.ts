// Installs the extra Lua libraries (docs/libraries.md) into the engine's state.
// A library is a pair `src/lua/libs/NAME.lua` + `NAME.ts`: the Lua chunk is
// called once as `chunk(js, M)`, where `js` holds the bridged JavaScript
// primitives NAME.ts defines and `M` is the runtime's table (src/lua/runtime/:
// M.suspend, M.checkstring, M.str51 …).  Before any library, the support
// chunks of src/lua/library-support/ add shared helpers to M.
//
// The libraries behind a global of their own (json, sodium, jwt,
// control_client, socket, pg) are loaded, their JavaScript and their Lua,
// only for a config that can reach that global (library-reach.ts): about
// 0.6 MB of an idle daemon whose config uses none of them (docs/limits.md,
// "Memory").  A config that can reach one gets it exactly as before.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_DIR } from '../package-dir.cjs';
import { cgroupLibrary } from './libs/cgroup.js';
import { filesLibrary } from './libs/files.js';
import type { LibraryContext, LuaLibrary } from './library.js';
import { mayReach } from './library-reach.js';

interface LibraryEntry {
  /** The globals through which a config uses the library; none: every config gets it. */
  readonly reachedBy: readonly string[];
  readonly load: () => LuaLibrary | Promise<LuaLibrary>;
}

/** The libraries, in installation order. */
const LIBRARIES: readonly LibraryEntry[] = [
  // io.open and friends, m.cgroup
  { reachedBy: [], load: () => filesLibrary },
  { reachedBy: [], load: () => cgroupLibrary },
  // json before jwt (its encoder), sodium for jwt's signatures
  { reachedBy: ['json', 'jwt'], load: async () => (await import('./libs/json.js')).jsonLibrary },
  { reachedBy: ['sodium', 'jwt'], load: async () => (await import('./libs/sodium.js')).sodiumLibrary },
  { reachedBy: ['jwt'], load: async () => (await import('./libs/jwt.js')).jwtLibrary },
  { reachedBy: ['control_client'], load: async () => (await import('./libs/control_client.js')).controlClientLibrary },
  { reachedBy: ['socket'], load: async () => (await import('./libs/socket.js')).socketLibrary },
  { reachedBy: ['pg'], load: async () => (await import('./libs/pg.js')).pgLibrary },
];

/** Every library installed in this process so far (by any engine), for shutdown. */
const installed = new Set<LuaLibrary>();

/**
 * Helpers the libraries share, added to M (src/lua/library-support/NAME.lua):
 * the argument checks, the metatable of objects that close what they own.
 */
const SUPPORT_CHUNKS: readonly string[] = ['argcheck', 'owning-object'];

function luaChunk(path: string): Buffer {
  return readFileSync(join(PACKAGE_DIR, 'src', 'lua', `${path}.lua`));
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
 * The support chunks, then every library the config can reach (after their
 * asynchronous set-up, which may look at the config file's bytes:
 * undefined when unreadable).  Returns the names of the libraries installed.
 */
export async function installLibraries(context: LibraryContext, config: Buffer | undefined): Promise<string[]> {
  const none = context.lua.functionTable({}, {});
  for (const chunk of SUPPORT_CHUNKS) runChunk(context, 'library-support', chunk, none);
  const libraries: LuaLibrary[] = [];
  for (const entry of LIBRARIES) if (entry.reachedBy.length === 0 || mayReach(config, entry.reachedBy)) libraries.push(await entry.load());
  for (const library of libraries) await library.prepare?.(config);
  for (const library of libraries) {
    installLibrary(context, library);
    installed.add(library);
  }
  return libraries.map((library) => library.name);
}

/** The daemon shuts down: every library closes what it holds open. */
export function shutdownLibraries(): void {
  for (const library of installed) library.shutdown?.();
}
