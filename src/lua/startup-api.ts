// The JavaScript half of the startup API (runtime/startup.lua): the
// listeners a config asks for, which the daemon creates at once through
// its StartupHost; running the config file; and what the engine reads
// once it ran (log_server).
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { systemErrorText } from '../native/linux.js';
import type { ListenTarget } from '../policy.js';
import { DefaultPort, parseNumericAddress, type SocketAddress } from '../protocol/socket-address.js';
import type { AddressBook } from './address-book.js';
import { changeDirectory, configDirectory } from './config-path.js';
import { ConfigError } from '../errors.js';
import type { LuaState } from './lua-state.js';
import { LuaError, type BridgedFunction, type LuaArg } from './lua-values.js';

export interface ListenRequest {
  readonly handler: number;
  readonly maxSize: number;
  readonly target: ListenTarget;
}

export interface StartupHost {
  /** Creates the listener(s) now; throws an Error whose message the script sees. */
  listen(request: ListenRequest): void;
  /** `metrics_listen(address)`: the error text for the script, or undefined when accepted. */
  metricsListen?(address: string): string | undefined;
}

function hostCall(f: () => void): void {
  try {
    f();
  } catch (e) {
    throw e instanceof LuaError ? e : new LuaError((e as Error).message);
  }
}

/** The primitives of runtime/startup.lua: qmqp_listen (a path, `@abstract` or systemd) and metrics_listen. */
export function startupPrimitives(host: StartupHost): Record<string, BridgedFunction> {
  return {
    listen: ([handler, address, size]) => {
      const a = String(address);
      const target: ListenTarget = a.startsWith('@')
        ? { kind: 'abstract', name: Buffer.from(a.slice(1), 'latin1') }
        : { kind: 'path', path: a };
      if (target.kind === 'path' ? a.length > 107 : a.length > 108) throw new LuaError('Path is too long');
      hostCall(() => host.listen({ handler: Number(handler), maxSize: Number(size), target }));
    },
    metrics_listen: ([address]) => (host.metricsListen === undefined ? 'metrics_listen is not available here' : host.metricsListen(String(address))),
    listen_systemd: ([handler, size]) => {
      hostCall(() => host.listen({ handler: Number(handler), maxSize: Number(size), target: { kind: 'systemd' } }));
    },
  };
}

/**
 * The bytes runConfig will run (read from the config's folder, as it
 * reads them), for the libraries' set-up before it; undefined when unreadable.
 */
export function peekConfig(configPath: string): Buffer | undefined {
  try {
    return readFileSync(resolve(configDirectory(configPath) ?? '.', configPath));
  } catch {
    return undefined;
  }
}

/**
 * Runs the config file through `M.load_config` (`loadConfig`), in the
 * file's folder (relative names in it resolve there), then back in `/`.
 * Throws ConfigError.
 */
export function runConfig(lua: LuaState, loadConfig: number, configPath: string): void {
  const directory = configDirectory(configPath);
  try {
    if (directory !== undefined) changeDirectory(directory);
  } catch (e) {
    // name the file, not only its folder (e.g. the default config on a fresh install)
    throw new ConfigError(`cannot open ${configPath}: ${(e as Error).message}`);
  }
  let source: Buffer;
  try {
    source = readFileSync(configPath);
  } catch (e) {
    throw new ConfigError(`cannot open ${configPath}: ${systemErrorText(e)}`);
  }
  const [error] = lua.call(loadConfig, [source, '@' + configPath]);
  changeDirectory('/');
  if (typeof error === 'string') throw new ConfigError(error);
}

/** `log_server` as M.finish_startup describes it: none, an address string or an address object. */
export function logServerAddress(kind: LuaArg, value: LuaArg, addresses: AddressBook): SocketAddress | undefined {
  switch (kind) {
    case 'none':
      return undefined;
    case 'string':
      try {
        return parseNumericAddress(String(value), DefaultPort.pond, 'dgram');
      } catch (e) {
        throw new ConfigError((e as Error).message);
      }
    case 'address':
      return addresses.first(Number(value));
    default:
      throw new ConfigError(`log_server must be an address string or an address object, not a ${String(value)}`);
  }
}
