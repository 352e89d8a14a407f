// libsodium (its WebAssembly build: about 5 MB of an idle daemon) is
// loaded only for a config that can reach the `sodium` or `jwt` library.
// It can only be loaded asynchronously, and a config may use it while it
// loads (synchronously), so the decision is made before the config runs,
// from its text: a config that names neither library, loads no other code
// (load, loadfile, dofile, require, package) and reaches no global by a
// computed name (_G, _ENV, debug) cannot call them, at startup or later,
// since every handler it installs is in that text.  A precompiled chunk,
// or a file that cannot be read here, counts as reaching them.
import type Sodium from 'libsodium-wrappers';

let loaded: typeof Sodium | undefined;

/** Names that may lead to the libraries; anything else cannot reach a global it does not name. */
const REACHES = /\b(?:sodium|jwt|_G|_ENV|load|loadfile|loadstring|dofile|require|package|debug)\b/;

/** The Lua signature that starts a precompiled chunk. */
const PRECOMPILED = 0x1b;

/** Whether the config (its bytes; undefined: unreadable) may use libsodium. */
export function mayUseLibsodium(config: Buffer | undefined): boolean {
  if (config === undefined || config[0] === PRECOMPILED) return true;
  return REACHES.test(config.toString('latin1'));
}

/** Loads libsodium (once) if `config` may use it. */
export async function prepareLibsodium(config: Buffer | undefined): Promise<void> {
  if (loaded !== undefined || !mayUseLibsodium(config)) return;
  const module = (await import('libsodium-wrappers')).default;
  await module.ready;
  loaded = module;
}

/** Whether libsodium has been loaded in this process. */
export function libsodiumLoaded(): boolean {
  return loaded !== undefined;
}

/** The loaded libsodium (throws if the config was judged not to use it, which no config can reach). */
export function libsodium(): typeof Sodium {
  if (loaded === undefined) throw new Error('libsodium is not loaded');
  return loaded;
}
