// `npm run bench`: qrelay against its baselines, all in one run, over Unix
// sockets, driven by the C load generator (bench/qmqp-load.c).
//   npm run bench [-- --quick] [-- --rounds N] [-- --seconds S]
//   QRELAY_BENCH_REF=/path/to/cm4all-qrelay npm run bench   (adds the C++ original)
// Baselines: the generator straight into the C sink (what the generator and
// sink cost; the relays cannot beat it), the plain-Node floor relay
// (bench/floor-relay.mjs) and the C++ original.  Cases are measured in
// interleaved rounds (the order rotates) and reported as medians, so that
// the shared machine's noise hits all alike.  Prints one table, the memory
// cases and the issue's targets; writes bench/results/latest.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGenerator, send, startSink } from './lib/load.js';
import { measure, rssWhile, type Sample } from './lib/measure.js';
import { flag, numberOption } from './lib/options.js';
import { ROOT, timeLimit } from './lib/processes.js';
import { treeRss } from './lib/proc.js';
import { SIZES, type Case, type Cell } from './lib/cases.js';
import { printReport, type MemoryReport } from './lib/report.js';
import { interleaved } from './lib/rounds.js';
import { startBareNode, startFloor, startOriginal, startQrelay, type Policy, type Relay } from './lib/servers.js';

const quick = flag('quick');
const ROUNDS = numberOption('rounds', quick ? 1 : 3);
const SECONDS = numberOption('seconds', quick ? 1 : 2.5);
const REF = process.env.QRELAY_BENCH_REF;
timeLimit(quick ? 150_000 : 20 * 60_000, 'bench');

const CASES: Case[] = [
  { policy: 'relay', size: '2 KB', clients: 8 },
  { policy: 'relay', size: '2 KB', clients: 1 },
  ...(quick ? [] : [{ policy: 'relay', size: '2 KB', clients: 1000 } as const]),
  { policy: 'relay', size: '1 MiB', clients: 8 },
  ...(quick ? [] : [{ policy: 'relay', size: '16 MiB', clients: 8 } as const]),
  { policy: 'discard', size: '2 KB', clients: 8 },
  ...(quick
    ? []
    : [
        { policy: 'exec_raw', size: '2 KB', clients: 8 } as const,
        { policy: 'creds', size: '2 KB', clients: 8 } as const,
      ]),
];

buildGenerator();
const dir = mkdtempSync(join(tmpdir(), 'qrelay-bench-'));
const sink = await startSink(join(dir, 'sink.sock'));
const direct: Relay = {
  name: 'generator -> C sink',
  pid: sink.process.pid,
  sockets: { relay: sink.path },
  process: sink.process,
  stop: async () => {},
};
const bare = startBareNode();
const [floor, qrelay, qrelay2, quiet, original] = await Promise.all([
  startFloor(join(dir, 'floor'), sink.path),
  startQrelay({ name: 'qrelay', dir: join(dir, 'qrelay'), sink: sink.path, workers: 1 }),
  startQrelay({ name: 'qrelay --workers 2', dir: join(dir, 'qrelay2'), sink: sink.path, workers: 2 }),
  startQrelay({ name: 'qrelay QRELAY_LOG=quiet', dir: join(dir, 'quiet'), sink: sink.path, workers: 1, log: 'quiet' }),
  REF === undefined ? undefined : startOriginal(REF, join(dir, 'cxx'), sink.path),
]);
if (qrelay === undefined) throw new Error('qrelay did not start');
const relays = [floor, qrelay, qrelay2, quiet, original].filter((r): r is Relay => r !== undefined);
/** Relayed mails the sink must have accepted (answered K through a relay policy). */
let relayed = 0;
const count = (policy: Policy, s: Sample): Sample => {
  if (policy === 'relay') relayed += s.mails - s.nonK;
  return s;
};

let report: MemoryReport;
let results: Map<Cell, Sample[]>;
try {
  // idle memory, before any mail
  await new Promise((resolve) => setTimeout(resolve, 2000));
  const idle = new Map<string, number>([['bare node', treeRss(bare.pid)], ...relays.map((r): [string, number] => [r.name, treeRss(r.pid)])]);
  await bare.stop();

  // warm-up: every relay, every policy and size it will see
  for (const r of relays) {
    for (const c of CASES) {
      const socket = r.sockets[c.policy];
      if (socket === undefined || CASES.find((o) => o.policy === c.policy && o.size === c.size) !== c) continue;
      count(c.policy, await measure({ pid: r.pid, socket, clients: 8, messageBytes: SIZES[c.size], seconds: quick ? 0.3 : 0.5 }));
    }
  }

  // memory after many mails, and after a burst of big ones (not in --quick)
  const afterMany = new Map<string, { mails: number; bytes: number }>();
  const burst = new Map<string, { peak: number; atEnd: number; after5s: number; errors: number }>();
  if (!quick) {
    const MANY = 100_000;
    for (const r of relays) {
      if (r === quiet) continue;
      const s = count('relay', await measure({ pid: r.pid, socket: r.sockets.relay!, clients: 8, messageBytes: SIZES['2 KB'], seconds: 120, mailsPerClient: MANY / 8 }));
      await new Promise((resolve) => setTimeout(resolve, 1000));
      afterMany.set(r.name, { mails: s.mails, bytes: treeRss(r.pid) });
    }
    for (const r of relays) {
      if (r === quiet) continue;
      const run = send({ socket: r.sockets.relay!, clients: 50, messageBytes: SIZES['16 MiB'], seconds: 120, mailsPerClient: 1 });
      const sampled = await rssWhile(r.pid, 100, run, 5000);
      count('relay', { ...sampled.result, cpuPerMail: NaN, rssBytes: 0 });
      burst.set(r.name, {
        peak: sampled.peak,
        atEnd: sampled.atEnd,
        after5s: sampled.curve[sampled.curve.length - 1]!.bytes,
        errors: sampled.result.errors + sampled.result.nonK,
      });
    }
  }
  report = { idle, afterMany, burst };

  // the table: every case on every relay that serves it, in interleaved rounds
  const cells: Cell[] = [];
  for (const c of CASES) {
    for (const r of [direct, ...relays]) {
      if (r.sockets[c.policy] === undefined) continue;
      if (r === quiet && !(c.size === '2 KB' && c.clients !== 1000 && c.policy === 'relay')) continue;
      cells.push({ ...c, relay: r.name, pid: r.pid, socket: r.sockets[c.policy]! });
    }
  }
  results = await interleaved(ROUNDS, cells, async (cell) =>
    count(cell.policy, await measure({ pid: cell.pid, socket: cell.socket, clients: cell.clients, messageBytes: SIZES[cell.size], seconds: SECONDS })),
  );
} finally {
  await Promise.allSettled([...relays.map((r) => r.stop()), bare.stop()]);
}
const accepted = await sink.stop();
rmSync(dir, { recursive: true, force: true });

const json = printReport({ rounds: ROUNDS, seconds: SECONDS, quick, results, memory: report, ref: REF });
const lost = relayed - accepted.mails;
process.stdout.write(`sink: ${accepted.mails} mails accepted, ${relayed} answered K through a relay${lost === 0 ? '' : ` (difference ${lost})`}\n`);
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const out = join(ROOT, 'bench', 'results', 'latest.json');
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), ...json, sink: { ...accepted, relayed } }, null, 1)}\n`);
process.stdout.write(`results: ${out}\n`);
process.exit(0);
