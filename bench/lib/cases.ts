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
