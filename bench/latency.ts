// Round-trip time of one mail (connect, 2 KB request, answer, close) with a
// single client: qrelay relaying to the sink vs. qrelay discarding, and the
// sink directly as the floor.  Interleaved rounds, as in relay.ts.
// Prints a table, then one JSON line per variant.  Run after `npx tsc -p .`:
//   node --import tsx bench/latency.ts
import { timedExchange } from './lib/qmqp-client.js';
import { interleaved } from './lib/rounds.js';
import { percentile, round } from './lib/stats.js';
import { formatTable } from './lib/table.js';
import { MESSAGE_BYTES, REQUEST, startTargets, type Target } from './lib/targets.js';

const MAILS_PER_ROUND = 500;
const ROUNDS = 4;
const WARMUP_MAILS = 300;

/** Sends `mails` mails one after another; their round trips in milliseconds. */
async function roundTrips(target: Target, mails: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < mails; i++) times.push(await timedExchange(target.path, REQUEST, target.expected));
  return times;
}

const targets = await startTargets();
let sinkMails: number;
let results: Map<Target, number[][]>;
try {
  for (const target of targets.list) await roundTrips(target, WARMUP_MAILS);
  results = await interleaved(ROUNDS, targets.list, (target) => roundTrips(target, MAILS_PER_ROUND));
} finally {
  sinkMails = await targets.stop();
}
const expectedSinkMails = targets.list.filter((t) => t.name !== 'discard').length * (WARMUP_MAILS + ROUNDS * MAILS_PER_ROUND);
if (sinkMails !== expectedSinkMails) throw new Error(`the sink accepted ${sinkMails} mails, expected ${expectedSinkMails}`);

const summaries = targets.list.map((target) => {
  const sorted = results.get(target)!.flat().sort((a, b) => a - b);
  return { target, median: percentile(sorted, 50), p90: percentile(sorted, 90), p99: percentile(sorted, 99) };
});
const ms = (value: number): string => value.toFixed(3);
process.stdout.write(
  `latency: one client, ${MESSAGE_BYTES}-byte mails, ${ROUNDS} interleaved rounds of ${MAILS_PER_ROUND} mails (after ${WARMUP_MAILS} warm-up)\n` +
    `${formatTable(
      ['variant', 'median ms', 'p90 ms', 'p99 ms'],
      summaries.map((s) => [s.target.name, ms(s.median), ms(s.p90), ms(s.p99)]),
    )}\n`,
);
for (const s of summaries) {
  const line = {
    bench: 'latency',
    variant: s.target.name,
    clients: 1,
    message_bytes: MESSAGE_BYTES,
    mails: ROUNDS * MAILS_PER_ROUND,
    median_ms: round(s.median, 3),
    p90_ms: round(s.p90, 3),
    p99_ms: round(s.p99, 3),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
