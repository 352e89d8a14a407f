// Which downstream servers to skip for a while (per process): a server that
// could not be reached, or failed without answering, is skipped for 10 s,
// doubling with each further failure up to 5 min; an answer resets it.
// When its time is up, one mail probes it while the others go on skipping
// it (a lease of the first backoff duration), so that a server still down
// costs one mail a timeout, not every mail that arrives meanwhile.  When
// every server of a list is skipped, the one whose time ends first is tried
// anyway.
import { formatAddress, type SocketAddress } from '../protocol/socket-address.js';

/** One server's state as the log and the metrics show it. */
export interface ServerState {
  /** The address as `tostring()` shows it. */
  readonly server: string;
  /** Failures since its last answer. */
  readonly failures: number;
  /** Skipped until then (ms since the epoch). */
  readonly until: number;
}

interface Failing {
  failures: number;
  until: number;
  /** When the current backoff started. */
  since: number;
}

export interface BackoffDurations {
  readonly firstMs: number;
  readonly maxMs: number;
}

export type ServerOrder = 'sequential' | 'random';

const names = new WeakMap<SocketAddress, string>();

/** The server's name, `tostring()` of its address (computed once per address object). */
export function serverName(address: SocketAddress): string {
  let name = names.get(address);
  if (name === undefined) {
    name = formatAddress(address);
    names.set(address, name);
  }
  return name;
}

export class ServerBackoff {
  private readonly failing = new Map<string, Failing>();

  constructor(
    private readonly durations: BackoffDurations,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /**
   * The servers to try for one mail, in order: those not skipped (or the one
   * whose backoff ends first).  A server whose backoff is over is included
   * and leased to this mail as its probe.
   */
  plan(servers: readonly SocketAddress[], order: ServerOrder): readonly SocketAddress[] {
    const now = this.now();
    const ready = servers.filter((s) => this.ready(serverName(s), now));
    if (ready.length === 0) {
      let first = servers[0]!;
      for (const s of servers) if (this.failing.get(serverName(s))!.until < this.failing.get(serverName(first))!.until) first = s;
      return [first];
    }
    if (order === 'sequential' || ready.length === 1) return ready;
    const start = Math.floor(this.random() * ready.length);
    return [...ready.slice(start), ...ready.slice(0, start)];
  }

  /**
   * An attempt begun at `startedAt` failed without an answer.  Attempts
   * begun before the current backoff started do not extend it (mails in
   * flight when a server goes down count once).  Returns the new state, or
   * undefined when nothing changed.
   */
  failed(server: string, startedAt: number): ServerState | undefined {
    const now = this.now();
    const state = this.failing.get(server);
    if (state !== undefined && state.since > startedAt) return undefined;
    const failures = (state?.failures ?? 0) + 1;
    const until = now + Math.min(this.durations.firstMs * 2 ** Math.min(failures - 1, 30), this.durations.maxMs);
    this.failing.set(server, { failures, until, since: now });
    return { server, failures, until };
  }

  /** The server answered; returns how many failures it had before, if any. */
  answered(server: string): number | undefined {
    const state = this.failing.get(server);
    if (state === undefined) return undefined;
    this.failing.delete(server);
    return state.failures;
  }

  /** The servers with failures since their last answer (for the metrics). */
  snapshot(): ServerState[] {
    return [...this.failing].map(([server, { failures, until }]) => ({ server, failures, until }));
  }

  /** Not skipped now; a server whose backoff just ended is leased to the caller's mail. */
  private ready(server: string, now: number): boolean {
    const state = this.failing.get(server);
    if (state === undefined) return true;
    if (state.until > now) return false;
    state.until = now + this.durations.firstMs;
    state.since = now;
    return true;
  }
}
