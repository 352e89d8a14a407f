// `npm run bench`: qrelay against its baselines, all in one run, over Unix
// sockets, driven by the C load generator (bench/qmqp-load.c).
//   npm run bench [-- --quick] [-- --rounds N] [-- --seconds S]
//   QRELAY_BENCH_REF=/path/to/cm4all-qrelay npm run bench   (adds the C++ original)
//   QRELAY_BENCH_BASE=/path/to/other/qrelay npm run bench   (adds that tree's built dist/main.js as
//     "qrelay base", for an A/B comparison in the same run)
//   BENCH_CPU_PROFILE_DIR=DIR npm run bench   (a V8 CPU profile of the qrelay row's daemon)
//   QRELAY_BENCH_NODE_OPTIONS='--flag …' npm run bench   (options for the qrelay row's `node`, e.g. V8 flags)
//   npm run bench -- --cases relay-2KB-8,relay-1MiB-8   (only these rows; `memory` adds the memory cases)
//   npm run bench -- --relays floor,qrelay,cxx   (only these relays: floor, qrelay, workers2, quiet, cxx)
// Baselines: the generator straight into the C sink (what the generator and
// sink cost; the relays cannot beat it), the plain-Node floor relay
// (bench/floor-relay.mjs) and the C++ original.  Cases are measured in
// interleaved rounds (the order rotates; the 2 KB cases first, then 1 MiB,
// then 16 MiB: bench/lib/rounds.ts says why) and reported as medians (ratios:
// the median of the per-round ratios), so that the shared machine's noise
// hits all alike.  The memory cases then run on freshly started relays.
// Prints one table, the memory cases and the issue's targets; writes
// bench/results/latest.json.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGenerator, startSink, type SendResult } from './lib/load.js';
import { measure, type Sample } from './lib/measure.js';
import { idleRss, memoryCases, type MemoryReport } from './lib/memory.js';
import { flag, listOption, numberOption } from './lib/options.js';
import { ROOT, timeLimit } from './lib/processes.js';
import { SIZES, selectCases, type Case, type Cell } from './lib/cases.js';
import { measureLogLine } from './lib/log-line.js';
import { printReport } from './lib/report.js';
import { ascending, interleaved } from './lib/rounds.js';
import { startBareNode, startFloor, startOriginal, startQrelay, type Policy, type Relay } from './lib/servers.js';

const quick = flag('quick');
const ROUNDS = numberOption('rounds', quick ? 1 : 5);
const SECONDS = numberOption('seconds', quick ? 0.8 : 1.5);
const WARMUP_MAILS = quick ? 4000 : 10_000;
const REF = process.env.QRELAY_BENCH_REF;
const BASE = process.env.QRELAY_BENCH_BASE;
const NODE_OPTIONS = process.env.QRELAY_BENCH_NODE_OPTIONS?.split(' ').filter((o) => o !== '');
timeLimit(quick ? 150_000 : 20 * 60_000, 'bench');

const ALL_CASES: Case[] = [
  { policy: 'relay', size: '2 KB', clients: 8 },
  { policy: 'relay', size: '2 KB', clients: 1 },
  { policy: 'relay', size: '2 KB', clients: 1000 },
  { policy: 'relay', size: '1 MiB', clients: 8 },
  { policy: 'relay', size: '16 MiB', clients: 8 },
  { policy: 'discard', size: '2 KB', clients: 8 },
  { policy: 'exec_raw', size: '2 KB', clients: 8 },
  { policy: 'creds', size: '2 KB', clients: 8 },
];
/** The rows of --quick: no 1 000 clients, no 16 MiB, relay and discard only. */
const QUICK_CASES = ALL_CASES.filter((c) => c.clients !== 1000 && c.size !== '16 MiB' && (c.policy === 'relay' || c.policy === 'discard'));
const chosen = listOption('cases');
const CASES: Case[] = chosen !== undefined ? selectCases(ALL_CASES, chosen) : quick ? QUICK_CASES : ALL_CASES;
/** The memory cases: by default unless --quick; with --cases only when `memory` is named. */
const MEMORY = chosen !== undefined ? chosen.includes('memory') : !quick;
const RELAY_KEYS = ['floor', 'qrelay', 'workers2', 'quiet', 'cxx'] as const;
const relayKeys = listOption('relays') ?? [...RELAY_KEYS];
const unknownRelays = relayKeys.filter((k) => !(RELAY_KEYS as readonly string[]).includes(k));
if (unknownRelays.length > 0) throw new Error(`--relays: unknown ${unknownRelays.join(', ')}; known: ${RELAY_KEYS.join(', ')}`);
if (!relayKeys.includes('qrelay')) throw new Error('--relays: qrelay is always measured');
const wanted = (key: (typeof RELAY_KEYS)[number]): boolean => relayKeys.includes(key);

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
const QUIET = 'qrelay QRELAY_LOG=quiet';

/** Every relay of the run, started at once in DIR/SET/…; qrelay --workers 2 only where supported. */
async function startRelays(set: string, withQuiet: boolean): Promise<Relay[]> {
  const at = (name: string): string => join(dir, set, name);
  const started = await Promise.all([
    wanted('floor') ? startFloor(at('floor'), sink.path) : undefined,
    startQrelay({ name: 'qrelay', dir: at('qrelay'), sink: sink.path, workers: 1, cpuProfileDir: set === 'table' ? process.env.BENCH_CPU_PROFILE_DIR : undefined, nodeOptions: NODE_OPTIONS }),
    wanted('workers2') ? startQrelay({ name: 'qrelay --workers 2', dir: at('qrelay2'), sink: sink.path, workers: 2 }) : undefined,
    withQuiet && !quick && wanted('quiet') ? startQrelay({ name: QUIET, dir: at('quiet'), sink: sink.path, workers: 1, log: 'quiet' }) : undefined,
    REF === undefined || !wanted('cxx') ? undefined : startOriginal(REF, at('cxx'), sink.path),
    BASE === undefined ? undefined : startQrelay({ name: 'qrelay base', dir: at('base'), sink: sink.path, workers: 1, main: join(BASE, 'dist', 'main.js') }),
  ]);
  if (started[1] === undefined) throw new Error('qrelay did not start');
  return started.filter((r): r is Relay => r !== undefined);
}

/** Relayed mails the sink must have accepted (answered K through a relay policy). */
let relayed = 0;
const countRelayed = (s: SendResult): void => void (relayed += s.mails - s.nonK);
const count = (policy: Policy, s: Sample): Sample => {
  if (policy === 'relay') countRelayed(s);
  return s;
};

let memory: MemoryReport;
let results: Map<Cell, Sample[]>;
let names: string[];
let relays: Relay[] = [];
try {
  relays = await startRelays('table', true);
  names = relays.map((r) => r.name);
  // idle memory of these (the memory cases below measure it again on fresh ones)
  const bare = startBareNode();
  let idle = await idleRss(relays, bare.pid);
  await bare.stop();

  // the table: every case on every relay that serves it, in interleaved
  // rounds, one message size after the other, smallest first (after a
  // round of big mails a relay recompiles for a while: bench/lib/rounds.ts)
  const cells: Cell[] = [];
  for (const c of CASES) {
    for (const r of [direct, ...relays]) {
      if (r.sockets[c.policy] === undefined) continue;
      if (r.name === QUIET && !(c.size === '2 KB' && c.clients !== 1000 && c.policy === 'relay')) continue;
      cells.push({ ...c, relay: r.name, pid: r.pid, socket: r.sockets[c.policy]! });
    }
  }
  const measured = new Map<Cell, Sample[]>();
  let warmed = false;
  for (const group of ascending(cells, (cell) => SIZES[cell.size])) {
    // warm-up: every relay, every policy of this size it will see.  The
    // first (2 KB relay) by a number of mails, the same for all: a relay that
    // has handled fewer mails than another (V8 still optimising, its heap
    // still growing) costs more per mail for a while; 2 s of warm-up left a
    // relay that serves fewer cases (QRELAY_LOG=quiet) 1.2–1.3× dearer than
    // an identical one that serves them all.
    const size = group[0]!.size;
    const groupCases = CASES.filter((c) => c.size === size);
    for (const r of relays) {
      for (const c of groupCases) {
        const socket = r.sockets[c.policy];
        if (socket === undefined || groupCases.find((o) => o.policy === c.policy) !== c) continue;
        const first = !warmed && c === groupCases[0];
        const mailsPerClient = first ? WARMUP_MAILS / 8 : undefined;
        const seconds = first ? 60 : quick ? 0.25 : 0.5;
        count(c.policy, await measure({ pid: r.pid, socket, clients: 8, messageBytes: SIZES[c.size], seconds, mailsPerClient }));
      }
    }
    warmed = true;
    const rounds = await interleaved(ROUNDS, group, async (cell) =>
      count(cell.policy, await measure({ pid: cell.pid, socket: cell.socket, clients: cell.clients, messageBytes: SIZES[cell.size], seconds: SECONDS, sinkPid: sink.process.pid })),
    );
    for (const [cell, samples] of rounds) measured.set(cell, samples);
  }
  results = new Map(cells.map((cell) => [cell, measured.get(cell)!]));
  await Promise.all(relays.map((r) => r.stop()));

  // memory after many mails, and after a burst of big ones, on fresh relays (not in --quick)
  memory = { idle, afterMany: new Map(), burst: new Map() };
  if (MEMORY) {
    relays = await startRelays('memory', false);
    const freshBare = startBareNode();
    idle = await idleRss(relays, freshBare.pid);
    await freshBare.stop();
    memory = await memoryCases(relays, idle, countRelayed);
  }
} finally {
  await Promise.allSettled(relays.map((r) => r.stop()));
}
const accepted = await sink.stop();
rmSync(dir, { recursive: true, force: true });

const skipped = names.includes('qrelay --workers 2') || !wanted('workers2') ? [] : ['qrelay --workers 2 (this build of qrelay has no --workers)'];
const json = printReport({ rounds: ROUNDS, seconds: SECONDS, quick, results, memory, ref: REF, skipped });
const lost = relayed - accepted.mails;
process.stdout.write(`sink: ${accepted.mails} mails accepted, ${relayed} answered K through a relay${lost === 0 ? '' : ` (difference ${lost})`}\n`);
// the per-mail log line alone (target: under 2 µs): one line per write (mails
// more than 10 ms apart) and eight (lines that share a write under load)
const logLine = [measureLogLine(1), measureLogLine(8)];
for (const c of logLine) {
  const total = c.formatUs + c.writeUs;
  process.stdout.write(`log line per mail: build ${c.formatUs.toFixed(2)} µs + write ${c.writeUs.toFixed(2)} µs (${c.perWrite} per write) = ${total.toFixed(2)} µs (target < 2 µs: ${total < 2 ? 'met' : 'not met'})\n`);
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
const out = join(ROOT, 'bench', 'results', 'latest.json');
writeFileSync(out, `${JSON.stringify({ date: new Date().toISOString(), ...json, sink: { ...accepted, relayed }, logLine }, null, 1)}\n`);
process.stdout.write(`results: ${out}\n`);
process.exit(0);
