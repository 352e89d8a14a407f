// The memory cases of `npm run bench`, on freshly started relays: idle RSS
// (against a bare `node` started alongside), RSS 1 s after 100 000 relayed
// 2 KB mails and 10 s after (whether it settles without traffic: V8 shrinks
// the young generation grown under load only in a full collection after the
// allocation rate has been low for some seconds, and an idle daemon
// allocates too little to cause one), and RSS around a burst of
// 50 concurrent 16 MiB mails, sampled every 100 ms until 5 s after the last
// answer.
import { SIZES } from './cases.js';
import { send, type SendResult } from './load.js';
import { rssWhile } from './measure.js';
import { treeRss } from './proc.js';
import type { Relay } from './servers.js';

export const BARE = 'bare node';
const MANY = 100_000;
const MANY_CLIENTS = 8;
const BURST = 50;

export interface MemoryReport {
  /** Resident bytes before any mail, per relay (and a bare node). */
  readonly idle: ReadonlyMap<string, number>;
  readonly afterMany: ReadonlyMap<string, { mails: number; bytes: number; after10s: number }>;
  readonly burst: ReadonlyMap<string, { peak: number; atEnd: number; after5s: number; errors: number }>;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Resident bytes (VmRSS) of each relay, and of `barePid`, read at the same
 * moment once they have settled for 2 s: qrelay gives back what loading
 * its config left behind 1 s after it is ready (src/streams/release-memory.ts),
 * and a bare node is flat half a second after it starts.
 */
export async function idleRss(relays: readonly Relay[], barePid: number): Promise<Map<string, number>> {
  await sleep(2000);
  return new Map<string, number>([[BARE, treeRss(barePid)], ...relays.map((r): [string, number] => [r.name, treeRss(r.pid)])]);
}

/**
 * The 100 000 mails go to all relays at once (only the RSS afterwards is
 * reported, so they need not take turns); the bursts one relay at a time.
 * `relayed` is told every result, for the sink's count.
 */
export async function memoryCases(relays: readonly Relay[], idle: Map<string, number>, relayed: (r: SendResult) => void): Promise<MemoryReport> {
  const afterMany = new Map<string, { mails: number; bytes: number; after10s: number }>();
  await Promise.all(
    relays.map(async (r) => {
      const s = await send({ socket: r.sockets.relay!, clients: MANY_CLIENTS, messageBytes: SIZES['2 KB'], seconds: 300, mailsPerClient: MANY / MANY_CLIENTS });
      relayed(s);
      await sleep(1000);
      const bytes = treeRss(r.pid);
      await sleep(9000);
      afterMany.set(r.name, { mails: s.mails, bytes, after10s: treeRss(r.pid) });
    }),
  );
  const burst = new Map<string, { peak: number; atEnd: number; after5s: number; errors: number }>();
  for (const r of relays) {
    const run = send({ socket: r.sockets.relay!, clients: BURST, messageBytes: SIZES['16 MiB'], seconds: 120, mailsPerClient: 1 });
    const sampled = await rssWhile(r.pid, 100, run, 5000);
    relayed(sampled.result);
    burst.set(r.name, {
      peak: sampled.peak,
      atEnd: sampled.atEnd,
      after5s: sampled.curve[sampled.curve.length - 1]!.bytes,
      errors: sampled.result.errors + sampled.result.nonK,
    });
  }
  return { idle, afterMany, burst };
}
