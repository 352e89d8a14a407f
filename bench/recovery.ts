// `npm run bench:recovery`: what the first mails after a burst and a pause
// cost.  After a 16 MiB × 8 round the bytes in flight fall back to nothing
// and the memory releaser runs full collections (src/streams/release-memory.ts);
// such a collection makes V8 drop the optimised code of many functions of
// the mail path (code that refers to objects which died in the pause), and
// the next mails pay for compiling it again.
// Per relay: 2 KB × 8 warm-up, steady phases of 0.5 s, the burst, a pause
// for the releaser, then phases of 0.5 s; the daemon's CPU per mail in each.
//   npm run bench:recovery [-- --rounds N]
//   QRELAY_BENCH_BASE=/path/to/other/qrelay npm run bench:recovery   (adds that tree's build, same run)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildGenerator, send, startSink } from './lib/load.js';
import { numberOption } from './lib/options.js';
import { treeCpu } from './lib/proc.js';
import { timeLimit } from './lib/processes.js';
import { median, recovery, type Phase, type Recovery } from './lib/recovery-phases.js';
import { startQrelay, type Relay } from './lib/servers.js';

const ROUNDS = numberOption('rounds', 2);
const PHASES = numberOption('phases', 6);
const PHASE_S = 0.5;
const BASE = process.env.QRELAY_BENCH_BASE;
timeLimit(10 * 60_000, 'bench:recovery');

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function phase(relay: Relay, seconds: number, bytes: number, mailsPerClient?: number): Promise<Phase> {
  const before = treeCpu(relay.pid);
  const result = await send({ socket: relay.sockets.relay!, clients: 8, seconds, messageBytes: bytes, ...(mailsPerClient === undefined ? {} : { mailsPerClient }) });
  if (result.errors > 0 || result.nonK > 0) throw new Error(`${relay.name}: ${result.errors} errors, ${result.nonK} not K (${result.firstBad})`);
  return { cpuUs: treeCpu(relay.pid) - before, mails: result.mails };
}

async function measureOnce(relay: Relay): Promise<Recovery> {
  await phase(relay, 2, 2048);
  const steady: Phase[] = [];
  for (let i = 0; i < 4; i++) steady.push(await phase(relay, PHASE_S, 2048));
  // two 16 MiB mails per client (the largest request the default max_size takes)
  await phase(relay, 5, (16 << 20) - 256, 2);
  // the releaser's rounds take up to ~3.2 s
  await sleep(4000);
  const after: Phase[] = [];
  for (let i = 0; i < PHASES; i++) after.push(await phase(relay, PHASE_S, 2048));
  return recovery(steady, after);
}

buildGenerator();
const dir = mkdtempSync(join(tmpdir(), 'qrelay-recovery-'));
const sink = await startSink(join(dir, 'sink.sock'));
const relays: Relay[] = [];
try {
  relays.push((await startQrelay({ name: 'qrelay', dir: join(dir, 'qrelay'), sink: sink.path, workers: 1 }))!);
  if (BASE !== undefined) relays.push((await startQrelay({ name: 'qrelay base', dir: join(dir, 'base'), sink: sink.path, workers: 1, main: join(BASE, 'dist', 'main.js') }))!);
  const results = new Map<string, Recovery[]>(relays.map((r) => [r.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    // the order rotates, so that neither relay always runs first
    for (let i = 0; i < relays.length; i++) {
      const relay = relays[(round + i) % relays.length]!;
      const r = await measureOnce(relay);
      results.get(relay.name)!.push(r);
      const phases = r.afterUsPerMail.map((u) => Math.round(u)).join(' / ');
      process.stdout.write(`round ${round + 1} ${relay.name.padEnd(11)} steady ${Math.round(r.steadyUsPerMail)} µs/mail; after the burst: ${phases} µs/mail; excess ${(r.excessUs / 1e6).toFixed(2)} CPU-s\n`);
    }
  }
  process.stdout.write('\nmedians over the rounds (µs/mail per 0.5 s phase after a 16 MiB × 8 burst and a 4 s pause):\n');
  for (const [name, rs] of results) {
    const phases = rs[0]!.afterUsPerMail.map((_, i) => Math.round(median(rs.map((r) => r.afterUsPerMail[i]!)))).join(' / ');
    process.stdout.write(`${name.padEnd(11)} steady ${Math.round(median(rs.map((r) => r.steadyUsPerMail)))}; after: ${phases}; excess ${(median(rs.map((r) => r.excessUs)) / 1e6).toFixed(2)} CPU-s\n`);
  }
} finally {
  for (const r of relays) await r.stop();
  await sink.stop();
  rmSync(dir, { recursive: true, force: true });
}
