// The command line (README.md): `qrelay [--config PATH] [--workers N|auto]`.
import { availableParallelism } from 'node:os';

export const DEFAULT_CONFIG = '/etc/cm4all/qrelay/config.lua';
export const USAGE = 'Usage: qrelay [--config PATH] [--workers N|auto]';

export type CommandLine =
  | { readonly kind: 'run'; readonly configPath: string; readonly workers: number }
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error' };

/** `N` (1 … 1024) or `auto` (the number of cores); undefined when invalid. */
function workerCount(text: string): number | undefined {
  if (text === 'auto') return availableParallelism();
  if (!/^[1-9][0-9]*$/.test(text)) return undefined;
  const n = Number(text);
  return n <= 1024 ? n : undefined;
}

export function parseCommandLine(args: readonly string[]): CommandLine {
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) return { kind: 'help' };
  let configPath: string | undefined;
  let workers: number | undefined;
  for (let i = 0; i < args.length; i += 2) {
    const [option, value] = [args[i], args[i + 1]];
    if (value === undefined) return { kind: 'usage-error' };
    if (option === '--config' && configPath === undefined) configPath = value;
    else if (option === '--workers' && workers === undefined) {
      workers = workerCount(value);
      if (workers === undefined) return { kind: 'usage-error' };
    } else return { kind: 'usage-error' };
  }
  return { kind: 'run', configPath: configPath ?? DEFAULT_CONFIG, workers: workers ?? 1 };
}
