// The fuzz run: structured-but-wrong QMQP (cases.ts) over real sockets to
// the real daemon.  Many cases are in flight at once (a sliding window of
// `concurrency` connections); after every batch the runner stops sending,
// waits for the cases in flight, and checks that a good mail is answered
// correctly and that the daemon's descriptors, children and resident memory
// are back at their baseline.  Deterministic from the seed: case i is
// element i % 100 of fc.sample(fuzzCase, { seed: seed + floor(i / 100) }),
// whatever the batch size and concurrency.
//
//   npm run fuzz -- --count N --seed S [--batch B] [--concurrency C]
import { readFileSync, readdirSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import fc from 'fast-check';
import { removeDir, startDaemon, waitFor, type RunningDaemon } from '../helpers/daemon.js';
import { childrenOf } from '../helpers/exec-children.js';
import { FUZZ_CONFIG, GOOD_ANSWER, GOOD_MAIL, fuzzCase, type FuzzCase } from './cases.js';

export interface FuzzOptions {
  readonly count: number;
  readonly seed: number;
  /** Cases between two baseline checks (default 5000). */
  readonly batchSize?: number;
  /** Cases in flight at once (default 200). */
  readonly concurrency?: number;
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
  /** Connects tried again because the listen backlog was full. */
  readonly connectRetries: number;
}

/** A case that takes longer than this is a hang. */
const CASE_TIMEOUT_MS = 15_000;

/** Cases are generated in chunks of this many, each from its own seed. */
const CHUNK = 100;

/** A trickled request: its first bytes one at a time, the rest in a few pieces. */
const TRICKLE_BYTEWISE = 12;
const TRICKLE_PIECES = 4;
/**
 * The pause between trickled pieces: long enough for the daemon to read
 * each piece on its own, far below its 5 s idle timeout, so a longer
 * pause would test nothing more.
 */
const TRICKLE_PAUSE_MS = 2;

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
    case 'trickle': {
      // the first bytes one at a time (a length header of up to 11 digits split everywhere), then the rest in a few pieces
      const bytewise = Math.min(TRICKLE_BYTEWISE, c.bytes.length);
      const out = Array.from({ length: bytewise }, (_, i) => c.bytes.subarray(i, i + 1));
      const step = Math.ceil((c.bytes.length - bytewise) / TRICKLE_PIECES);
      for (let from = bytewise; from < c.bytes.length; from += step) out.push(c.bytes.subarray(from, from + step));
      return out;
    }
    case 'abandon':
      return [c.bytes.subarray(0, d.after)];
    default:
      return [c.bytes];
  }
}

/**
 * Connects that found the listen backlog full (EAGAIN) and were tried
 * again: the kernel's backpressure when many cases are in flight, not an
 * answer of the daemon.  A daemon that stops accepting still fails the
 * case after CASE_TIMEOUT_MS.
 */
export const connectRetries = { count: 0 };

/** Sends one case; resolves with everything the daemon answered before closing. */
export function deliver(path: string, c: FuzzCase): Promise<string> {
  return new Promise((resolve, reject) => {
    let settled = false;
    let socket: Socket | undefined;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket?.destroy();
      outcome();
    };
    const timer = setTimeout(() => settle(() => reject(new Error(`no end after ${CASE_TIMEOUT_MS} ms`))), CASE_TIMEOUT_MS);
    const attempt = (): void => {
      const s = connect({ path, allowHalfOpen: true });
      socket = s;
      const chunks: Buffer[] = [];
      let connected = false;
      const done = (): void => settle(() => resolve(Buffer.concat(chunks).toString('latin1')));
      s.on('data', (d: Buffer) => chunks.push(d));
      s.on('end', done);
      s.on('close', () => {
        if (connected) done();
      });
      s.on('error', (e: NodeJS.ErrnoException) => {
        if (!connected && e.code === 'EAGAIN' && !settled) {
          connectRetries.count++;
          s.destroy();
          setTimeout(attempt, 1);
          return;
        }
        if (e.code === 'ECONNRESET' || e.code === 'EPIPE') return done();
        settle(() => reject(e));
      });
      s.on('connect', async () => {
        connected = true;
        for (const piece of pieces(c)) {
          if (s.destroyed) return;
          s.write(piece);
          if (c.delivery.kind === 'trickle') await new Promise((r) => setTimeout(r, TRICKLE_PAUSE_MS));
          else if (c.delivery.kind === 'split') await new Promise((r) => setImmediate(r));
        }
        if (c.delivery.kind === 'abandon') done();
        else if (c.delivery.kind === 'half-close' && !s.destroyed) s.end();
      });
    };
    attempt();
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

/** Case i of a run: deterministic from the seed, whatever the batch size and concurrency. */
class CaseSource {
  private chunk = -1;
  private cases: FuzzCase[] = [];
  constructor(private readonly seed: number, private readonly count: number) {}
  get(i: number): FuzzCase {
    const chunk = Math.floor(i / CHUNK);
    if (chunk !== this.chunk) {
      // numRuns shorter than CHUNK only for the last chunk; fc.sample's results are prefix-stable
      this.cases = fc.sample(fuzzCase, { seed: this.seed + chunk, numRuns: Math.min(CHUNK, this.count - chunk * CHUNK) });
      this.chunk = chunk;
    }
    return this.cases[i - chunk * CHUNK]!;
  }
}

export async function runFuzz(options: FuzzOptions): Promise<FuzzReport> {
  const batchSize = Math.max(1, options.batchSize ?? 5000);
  const concurrency = Math.max(1, options.concurrency ?? 200);
  const rssSlack = options.rssSlackBytes ?? 96 * 1024 * 1024;
  const progress = options.progress ?? ((): void => {});
  const daemon = await startDaemon({ config: FUZZ_CONFIG });
  const sock = join(daemon.dir, 'qrelay.sock');
  const failures: FuzzFailure[] = [];
  const answers: Record<string, number> = {};
  const source = new CaseSource(options.seed, options.count);
  const started = performance.now();
  connectRetries.count = 0;
  let cases = 0;
  let batch = 0;
  let peakRss = 0;
  let sampler: NodeJS.Timeout | undefined;
  try {
    const pid = daemon.child.pid!;
    // the baseline after a warm-up (Lua, sockets and buffers once used)
    for (let i = 0; i < 20; i++) await deliver(sock, { description: 'warm-up', bytes: GOOD_MAIL, delivery: { kind: 'whole' }, allowed: [GOOD_ANSWER] });
    const baseline = { fds: descriptors(pid), rss: residentBytes(pid) };
    // the peak is sampled while cases are in flight, not only between batches
    sampler = setInterval(() => {
      if (daemon.child.exitCode === null) peakRss = Math.max(peakRss, residentBytes(pid));
    }, 250);
    const runCase = async (index: number): Promise<void> => {
      const c = source.get(index);
      try {
        const answer = await deliver(sock, c);
        answers[answer] = (answers[answer] ?? 0) + 1;
        if (!c.allowed.includes(answer)) failures.push({ batch, index, description: c.description, problem: `answered ${JSON.stringify(answer)}, the spec allows ${JSON.stringify(c.allowed)}` });
      } catch (e) {
        failures.push({ batch, index, description: c.description, problem: String((e as Error).message) });
      }
    };
    for (; cases < options.count && failures.length < 20; batch++) {
      const end = Math.min(cases + batchSize, options.count);
      // a sliding window: each worker takes the next case as soon as its last one ends
      let next = cases;
      const worker = async (): Promise<void> => {
        while (next < end && failures.length < 20) await runCase(next++);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, end - cases) }, worker));
      cases = next;
      for (const problem of await backAtBaseline(daemon, sock, baseline, rssSlack)) failures.push({ batch, index: -1, description: 'after the batch', problem });
      const rss = residentBytes(pid);
      peakRss = Math.max(peakRss, rss);
      const seconds = (performance.now() - started) / 1000;
      progress(`batch ${batch + 1}: ${cases} cases, ${seconds.toFixed(0)} s, ${(cases / seconds).toFixed(0)}/s, ${failures.length} failures, ${descriptors(pid)} descriptors, rss ${rss >> 20} MiB`);
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
      connectRetries: connectRetries.count,
    };
  } finally {
    clearInterval(sampler);
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
  const batchSize = argument(args, '--batch', 5000);
  const concurrency = argument(args, '--concurrency', 200);
  console.log(`fuzz: ${count} cases, seed ${seed}, batches of ${batchSize}, ${concurrency} in flight`);
  const report = await runFuzz({ count, seed, batchSize, concurrency, progress: (line) => console.log(line) });
  const mib = (n: number): string => `${(n / 1048576).toFixed(0)} MiB`;
  console.log(`${report.cases} cases in ${report.batches} batches, ${report.seconds.toFixed(1)} s (${(report.cases / report.seconds).toFixed(0)} cases/s)`);
  console.log(`answers: ${Object.entries(report.answers).map(([a, n]) => `${JSON.stringify(a)} ${n}`).join(', ')}`);
  console.log(`daemon: ${report.baseline.fds} descriptors at baseline; resident ${mib(report.baseline.rss)} at baseline, peak ${mib(report.peakRss)}, end ${mib(report.finalRss)}`);
  console.log(`connects retried on a full listen backlog: ${report.connectRetries}`);
  console.log(`failures: ${report.failures.length}`);
  for (const f of report.failures) console.log(`  batch ${f.batch} case ${f.index}: ${f.description}: ${f.problem}`);
  process.exit(report.failures.length === 0 ? 0 : 1);
}
