// The command line (README.md): `qrelay [--config PATH]`.

export const DEFAULT_CONFIG = '/etc/cm4all/qrelay/config.lua';
export const USAGE = 'Usage: qrelay [--config PATH]';

export type CommandLine =
  | { readonly kind: 'run'; readonly configPath: string }
  | { readonly kind: 'help' }
  | { readonly kind: 'usage-error' };

export function parseCommandLine(args: readonly string[]): CommandLine {
  if (args.length === 0) return { kind: 'run', configPath: DEFAULT_CONFIG };
  if (args.length === 1 && (args[0] === '--help' || args[0] === '-h')) return { kind: 'help' };
  if (args.length === 2 && args[0] === '--config') return { kind: 'run', configPath: args[1]! };
  return { kind: 'usage-error' };
}
