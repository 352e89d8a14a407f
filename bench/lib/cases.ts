// What `npm run bench` measures: a policy, a message size, a number of
// concurrent clients, on one relay.
import type { Policy } from './servers.js';

export const SIZES = { '2 KB': 2048, '1 MiB': 1 << 20, '16 MiB': (16 << 20) - 256 } as const;
export type SizeName = keyof typeof SIZES;

export interface Case {
  readonly policy: Policy;
  readonly size: SizeName;
  readonly clients: number;
}

/** A case on one relay. */
export interface Cell extends Case {
  readonly relay: string;
  /** The process tree charged with the CPU time. */
  readonly pid: number;
  readonly socket: string;
}

/** A case's name for `--cases`: policy-size-clients, e.g. relay-2KB-8, relay-1MiB-8, discard-2KB-8. */
export function caseName(c: Case): string {
  return `${c.policy}-${c.size.replace(' ', '')}-${c.clients}`;
}

/**
 * The cases `--cases` picks out of `all` (every case `npm run bench` knows,
 * whatever --quick), in their usual order; an unknown name is an error
 * that lists the known ones.
 */
export function selectCases(all: readonly Case[], names: readonly string[]): Case[] {
  const known = new Map(all.map((c) => [caseName(c), c]));
  const unknown = names.filter((n) => !known.has(n) && n !== 'memory');
  if (unknown.length > 0) throw new Error(`--cases: unknown ${unknown.join(', ')}; known: ${[...known.keys()].join(', ')}, memory`);
  return all.filter((c) => names.includes(caseName(c)));
}
