// The command line: `qrelay [--config PATH] [--workers N|auto]` runs the
// daemon (`--config` is the original's only option), `qrelay check …` is a dry run of the
// configuration, `qrelay send …` a QMQP client.  Parsed with node:util's
// parseArgs; every error names the argument it is about.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { PACKAGE_DIR } from './package-dir.cjs';

export const DEFAULT_CONFIG = '/etc/cm4all/qrelay/config.lua';
export const USAGE = 'Usage: qrelay [--config PATH] [--workers N|auto]';

export const HELP = `${USAGE}
       qrelay check [--config PATH] [--sender ADDRESS] [--rcpt ADDRESS]... [--pid N --uid N --gid N] [< MESSAGE]
       qrelay send [--socket PATH | --host HOST [--port PORT]] [--timeout SECONDS] -f SENDER RECIPIENT... < MESSAGE
       qrelay --version | --help

Runs the QMQP relay with the Lua configuration at PATH (default ${DEFAULT_CONFIG}).
--workers N runs N worker processes accepting on the same sockets (auto: one
per core; default 1).

  check   loads the configuration as the daemon would, without binding,
          connecting or starting anything; with a message on stdin, runs the
          handler on it and prints the decision (exit 0 OK, 1 error, 2 usage)
  send    submits a message over QMQP and prints the answer
          (exit 0 accepted, 75 try again later, 77 refused)

Environment: QRELAY_LOG=quiet|mail|debug (default mail), QRELAY_SHUTDOWN_GRACE_MS,
QRELAY_LUA_TIME_LIMIT_MS.`;

/** The daemon's options: add an entry here and a field to DaemonArguments for a new one. */
const DAEMON_OPTIONS = {
  config: { type: 'string' },
  workers: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
} as const satisfies ParseArgsConfig['options'];

export interface DaemonArguments {
  readonly configPath: string;
  /** Worker processes (1: the daemon serves mail itself). */
  readonly workers: number;
}

export type CommandLine =
  | { readonly kind: 'run'; readonly args: DaemonArguments }
  | { readonly kind: 'check'; readonly args: readonly string[] }
  | { readonly kind: 'send'; readonly args: readonly string[] }
  | { readonly kind: 'help' }
  | { readonly kind: 'version' }
  | { readonly kind: 'usage-error'; readonly message: string };

/**
 * parseArgs, with its error as a value: the message names the offending
 * argument (e.g. `Unknown option '--verbose'`).
 */
export function tryParseArgs<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> | { readonly error: string } {
  try {
    return parseArgs(config);
  } catch (e) {
    return { error: (e as Error).message };
  }
}

/** `N` (1 … 1024) or `auto` (the number of cores); undefined when invalid. */
function workerCount(text: string): number | undefined {
  if (text === 'auto') return availableParallelism();
  if (!/^[1-9][0-9]*$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 1024 ? n : undefined;
}

export function parseCommandLine(args: readonly string[]): CommandLine {
  if (args[0] === 'check') return { kind: 'check', args: args.slice(1) };
  if (args[0] === 'send') return { kind: 'send', args: args.slice(1) };
  const parsed = tryParseArgs({ args: [...args], options: DAEMON_OPTIONS, strict: true });
  if ('error' in parsed) return { kind: 'usage-error', message: parsed.error };
  const { values } = parsed;
  if (values.help === true) return { kind: 'help' };
  if (values.version === true) return { kind: 'version' };
  if (values.config === '') return { kind: 'usage-error', message: "Option '--config' needs a file name" };
  const workers = values.workers === undefined ? 1 : workerCount(values.workers);
  if (workers === undefined) return { kind: 'usage-error', message: `Option '--workers' needs a positive number or auto, not '${values.workers}'` };
  return { kind: 'run', args: { configPath: values.config ?? DEFAULT_CONFIG, workers } };
}

/** The package version (package.json next to dist/). */
export function packageVersion(): string {
  const text = readFileSync(join(PACKAGE_DIR, 'package.json'), 'utf8');
  return (JSON.parse(text) as { version: string }).version;
}
