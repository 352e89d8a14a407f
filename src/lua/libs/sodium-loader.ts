// libsodium (its WebAssembly build: about 5 MB of an idle daemon) is
// loaded only for a config that can reach the `sodium` or `jwt` library
// (library-reach.ts).  It can only be loaded asynchronously, and a config
// may use it while it loads (synchronously), so the decision is made
// before the config runs, from its text.
import type Sodium from 'libsodium-wrappers';
import { mayReach } from '../library-reach.js';

let loaded: typeof Sodium | undefined;

/** Whether the config (its bytes; undefined: unreadable) may use libsodium. */
export function mayUseLibsodium(config: Buffer | undefined): boolean {
  return mayReach(config, ['sodium', 'jwt']);
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
