// The fuzz run: structured-but-wrong QMQP (cases.ts) over real sockets to
// the real daemon, in batches.  After every batch a good mail must be
// answered correctly and the daemon's descriptors, children and resident
// memory must be back at their baseline.  Deterministic from the seed:
// batch b is fc.sample(fuzzCase, { seed: seed + b }).
//
//   npm run fuzz -- --count N --seed S
import { readFileSync, readdirSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { removeDir, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { childrenOf } from '../helpers/exec-children.js';
import { FUZZ_CONFIG, GOOD_ANSWER, GOOD_MAIL, fuzzCase, type FuzzCase } from './cases.js';

export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  readonly batchSize?: number;
  /** Resident memory may exceed the baseline by this much after a batch. */
  readonly rssSlackBytes?: number;
  readonly progress?: (line: string) => void;
}

export interface FuzzFailure {
  readonly batch: number;
  readonly index: number;
  readonly description: string;
  readonly problem: string;
}

export interface FuzzReport {
  readonly cases: number;
  readonly batches: number;
  readonly failures: readonly FuzzFailure[];
  readonly seconds: number;
  readonly answers: Readonly<Record<string, number>>;
  readonly baseline: { readonly fds: number; readonly rss: number };
  readonly peakRss: number;
  readonly finalRss: number;
}

/** A case that takes longer than this is a hang. */
const CASE_TIMEOUT_MS = 15_000;

function descriptors(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return Number(match![1]) * 1024;
}

function pieces(c: FuzzCase): Buffer[] {
  const d = c.delivery;
  switch (d.kind) {
    case 'split': {
      const out: Buffer[] = [];
      let from = 0;
      for (const at of [...d.at, c.bytes.length]) {
        if (at > from) out.push(c.bytes.subarray(from, at));
        from = Math.max(from, at);
      }
      return out;
    }
    case 'trickle':
      return Array.from(c.bytes, (_, i) => c.bytes.subarray(i, i + 1));
    case 'abandon':
      return [c.bytes.subarray(0, d.after)];
    default:
      return [c.bytes];
  }
}

/** Sends one case; resolves with everything the daemon answered before closing. */
export function deliver(path: string, c: FuzzCase): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end after ${CASE_TIMEOUT_MS} ms`));
    }, CASE_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(Buffer.concat(chunks).toString('latin1'));
    };
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', done);
    socket.on('close', done);
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return done();
      clearTimeout(timer);
      reject(e);
    });
    socket.on('connect', async () => {
      for (const piece of pieces(c)) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (c.delivery.kind === 'trickle') await new Promise((r) => setTimeout(r, 1));
        else if (c.delivery.kind === 'split') await new Promise((r) => setImmediate(r));
      }
      if (c.delivery.kind === 'abandon') done();
      else if (c.delivery.kind === 'half-close' && !socket.destroyed) socket.end();
    });
  });
}

/** Waits (bounded) until the daemon is back at its baseline; returns what is not. */
async function backAtBaseline(daemon: RunningDaemon, sock: string, baseline: { fds: number; rss: number }, rssSlack: number): Promise<string[]> {
  const problems: string[] = [];
  const pid = daemon.child.pid!;
  const good = await deliver(sock, { description: 'good mail', bytes: GOOD_MAIL, delivery: { kind: 'whole' }, allowed: [GOOD_ANSWER] }).catch((e: Error) => e.message);
  if (good !== GOOD_ANSWER) problems.push(`good mail answered ${JSON.stringify(good)}`);
  await waitFor(() => descriptors(pid) <= baseline.fds, 5_000).catch(() => problems.push(`descriptors ${descriptors(pid)} > baseline ${baseline.fds}`));
  await waitFor(() => childrenOf(pid).length === 0, 5_000).catch(() => problems.push(`children left: ${childrenOf(pid).length}`));
  const rss = residentBytes(pid);
  if (rss > baseline.rss + rssSlack) problems.push(`resident memory ${rss >> 20} MiB > baseline ${baseline.rss >> 20} MiB + ${rssSlack >> 20} MiB`);
  if (daemon.child.exitCode !== null) problems.push(`daemon exited with ${daemon.child.exitCode}`);
  return problems;
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const batchSize = options.batchSize ?? 50;
  const rssSlack = options.rssSlackBytes ?? 96 * 1024 * 1024;
  const progress = options.progress ?? ((): void => {});
  const daemon = await startDaemon({ config: FUZZ_CONFIG });
  const sock = join(daemon.dir, 'qrelay.sock');
  const failures: FuzzFailure[] = [];
  const answers: Record<string, number> = {};
  const started = performance.now();
  let cases = 0;
  let batch = 0;
  let peakRss = 0;
  try {
    const pid = daemon.child.pid!;
    // the baseline after a warm-up (Lua, sockets and buffers once used)
    for (let i = 0; i < 20; i++) await deliver(sock, { description: 'warm-up', bytes: GOOD_MAIL, delivery: { kind: 'whole' }, allowed: [GOOD_ANSWER] });
    const baseline = { fds: descriptors(pid), rss: residentBytes(pid) };
    for (; cases < options.count && failures.length < 20; batch++) {
      const n = Math.min(batchSize, options.count - cases);
      const batchCases = fc.sample(fuzzCase, { seed: options.seed + batch, numRuns: n });
      const results = await Promise.allSettled(batchCases.map((c) => deliver(sock, c)));
      results.forEach((result, index) => {
        const c = batchCases[index]!;
        if (result.status === 'rejected') {
          failures.push({ batch, index, description: c.description, problem: String((result.reason as Error).message) });
          return;
        }
        answers[result.value] = (answers[result.value] ?? 0) + 1;
        if (!c.allowed.includes(result.value)) {
          failures.push({ batch, index, description: c.description, problem: `answered ${JSON.stringify(result.value)}, the spec allows ${JSON.stringify(c.allowed)}` });
        }
      });
      cases += n;
      for (const problem of await backAtBaseline(daemon, sock, baseline, rssSlack)) failures.push({ batch, index: -1, description: 'after the batch', problem });
      peakRss = Math.max(peakRss, residentBytes(pid));
      if (batch % 20 === 19) {
        const seconds = (performance.now() - started) / 1000;
        progress(`${cases} cases, ${(cases / seconds).toFixed(0)}/s, ${failures.length} failures, rss ${residentBytes(pid) >> 20} MiB`);
      }
    }
    return {
      cases,
      batches: batch,
      failures,
      seconds: (performance.now() - started) / 1000,
      answers,
      baseline,
      peakRss,
      finalRss: residentBytes(pid),
    };
  } finally {
    await daemon.stop();
    removeDir(daemon.dir);
  }
}

function argument(args: readonly string[], name: string, fallback: number): number {
  const i = args.indexOf(name);
  if (i < 0) return fallback;
  const value = Number(args[i + 1]);
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`${name} needs a non-negative integer`);
  return value;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const args = process.argv.slice(2);
  const count = argument(args, '--count', 1000);
  const seed = argument(args, '--seed', 1);
  console.log(`fuzz: ${count} cases, seed ${seed}`);
  const report = await runFuzz({ count, seed, progress: (line) => console.log(line) });
  const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
  console.log(`${report.cases} cases in ${report.batches} batches, ${report.seconds.toFixed(1)} s (${(report.cases / report.seconds).toFixed(0)} cases/s)`);
  console.log(`answers: ${Object.entries(report.answers).map(([a, n]) => `${JSON.stringify(a)} ${n}`).join(', ')}`);
  console.log(`daemon: ${report.baseline.fds} descriptors at baseline; resident ${mib(report.baseline.rss)} at baseline, peak ${mib(report.peakRss)}, end ${mib(report.finalRss)}`);
  console.log(`failures: ${report.failures.length}`);
  for (const f of report.failures) console.log(`  batch ${f.batch} case ${f.index}: ${f.description}: ${f.problem}`);
  process.exit(report.failures.length === 0 ? 0 : 1);
}
