// `npm run soak`: qrelay under sustained load and under a memory attack, with
// its resident memory sampled all along.  Bounded: stops by itself.
//   npm run soak [-- --seconds N] [-- --clients N] [-- --workers N]
// 1. N clients (default 1 000) relaying 2 KB mails through qrelay to the C sink
//    for --seconds (default 60): mails, errors, connects that found the backlog full, p50/p99, and
//    the RSS curve, one sample a second.
// 2. The memory attack: 200 connections that announce `16777216:` and then
//    trickle one byte every 3 s, and meanwhile 50 concurrent 16 MiB mails;
//    RSS peak during the attack and settled 5 s after it; then one ordinary
//    mail must still be answered K.
// The npm script raises the descriptor limit to the hard limit (`ulimit -n`):
// 1 000 clients need about 2 000 descriptors in the daemon and as many in
// the generator and sink.
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SIZES } from './lib/cases.js';
import { buildGenerator, hold, send, startSink } from './lib/load.js';
import { rssWhile } from './lib/measure.js';
import { numberOption } from './lib/options.js';
import { ROOT, timeLimit } from './lib/processes.js';
import { treeRss } from './lib/proc.js';
import { startQrelay, type Relay } from './lib/servers.js';

const SECONDS = numberOption('seconds', 60);
const CLIENTS = numberOption('clients', 1000);
const WORKERS = numberOption('workers', 1);
const ATTACK_SECONDS = Math.max(10, Math.min(30, SECONDS));
const TRICKLERS = 200;
const BIG_MAILS = 50;
const MAX_SIZE = 16 * 1024 * 1024;
timeLimit((SECONDS + ATTACK_SECONDS + 180) * 1000, 'soak');

const MB = 1e6;
const mb = (bytes: number): string => (bytes / MB).toFixed(0);
const out = (text: string): boolean => process.stdout.write(`${text}\n`);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
const descriptors = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;
/** The soft descriptor limit the daemon inherits from this process. */
const nofile = (): string => /Max open files\s+(\S+)/.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '?';

buildGenerator();
const dir = mkdtempSync(join(tmpdir(), 'qrelay-soak-'));
const sink = await startSink(join(dir, 'sink.sock'));
let relay: Relay | undefined;
const report: Record<string, unknown> = { seconds: SECONDS, clients: CLIENTS, workers: WORKERS };
try {
  relay = await startQrelay({ name: 'qrelay', dir: join(dir, 'qrelay'), sink: sink.path, workers: WORKERS });
  if (relay === undefined) throw new Error(`qrelay does not support --workers ${WORKERS}`);
  const pid = relay.pid;
  const socket = relay.sockets.relay!;
  await sleep(1000);
  const idle = treeRss(pid);
  const idleFds = descriptors(pid);
  out(`qrelay${WORKERS === 1 ? '' : ` --workers ${WORKERS}`}: idle RSS ${mb(idle)} MB, ${idleFds} descriptors; descriptor limit ${nofile()}`);

  // 1. sustained load
  out(`\n${CLIENTS} concurrent clients, 2 KB mails, relay to the C sink, ${SECONDS} s`);
  const load = await rssWhile(pid, 1000, send({ socket, clients: CLIENTS, seconds: SECONDS, messageBytes: SIZES['2 KB'] }), 0);
  const l = load.result;
  out(
    `mails ${l.mails} (${l.mailsPerSecond.toFixed(0)}/s), errors ${l.errors}, non-K answers ${l.nonK}${l.firstBad === '-' ? '' : ` (first: ${l.firstBad})`}, ` +
      `connects that found the listen backlog full ${l.backlogFull}`,
  );
  out(`latency ms: p50 ${l.p50Ms.toFixed(2)}, p90 ${l.p90Ms.toFixed(2)}, p99 ${l.p99Ms.toFixed(2)}, max ${l.maxMs.toFixed(2)}`);
  out(`RSS MB each second: ${load.curve.map((c) => mb(c.bytes)).join(' ')}`);
  await sleep(2000);
  const afterLoad = treeRss(pid);
  out(`RSS peak ${mb(load.peak)} MB, 2 s after the load ${mb(afterLoad)} MB (idle ${mb(idle)}); descriptors ${descriptors(pid)} (idle ${idleFds})`);
  report.load = { ...l, rss_curve_mb: load.curve.map((c) => Math.round(c.bytes / MB)), rss_peak: load.peak, rss_after: afterLoad };

  // 2. the memory attack
  out(`\nmemory attack: ${TRICKLERS} connections announcing ${MAX_SIZE}: and trickling a byte every 3 s for ${ATTACK_SECONDS} s, plus ${BIG_MAILS} concurrent 16 MiB mails`);
  const before = treeRss(pid);
  const attack = (async () => {
    const holding = hold(socket, TRICKLERS, ATTACK_SECONDS, 3, MAX_SIZE);
    await sleep(1000); // the slow ones are connected and have announced
    const big = await send({ socket, clients: BIG_MAILS, messageBytes: SIZES['16 MiB'], seconds: ATTACK_SECONDS + 60, mailsPerClient: 1 });
    return { big, held: await holding };
  })();
  const sampled = await rssWhile(pid, 250, attack, 5000);
  const { big, held } = sampled.result;
  const settled = sampled.curve[sampled.curve.length - 1]!.bytes;
  out(
    `16 MiB mails: ${big.mails - big.nonK} of ${BIG_MAILS} answered K, errors ${big.errors}, non-K ${big.nonK}${big.firstBad === '-' ? '' : ` (first: ${big.firstBad})`}, p99 ${big.p99Ms.toFixed(0)} ms`,
  );
  out(
    `trickling connections: ${held.opened} opened, ${held.connectFailed} could not connect, ${held.answered} answered (first: ${held.firstAnswer}), ` +
      `${held.droppedWithoutAnswer} closed without an answer, ${held.stillOpen} still open at the end`,
  );
  out(`RSS MB: before ${mb(before)}, peak ${mb(sampled.peak)}, at the end of the attack ${mb(sampled.atEnd)}, settled (5 s later) ${mb(settled)} (idle ${mb(idle)})`);
  out(`RSS MB every 0.25 s: ${sampled.curve.filter((_, i) => i % 4 === 0).map((c) => mb(c.bytes)).join(' ')} (every 4th sample shown)`);
  const check = await send({ socket, clients: 1, messageBytes: SIZES['2 KB'], seconds: 10, mailsPerClient: 1 });
  const alive = check.mails === 1 && check.nonK === 0;
  out(`afterwards: one ordinary mail ${alive ? 'answered K' : `NOT answered K (${check.firstBad})`}; descriptors ${descriptors(pid)} (idle ${idleFds})`);
  report.attack = { big, held, rss_before: before, rss_peak: sampled.peak, rss_at_end: sampled.atEnd, rss_settled: settled, ordinary_mail_after: alive };
  report.idle_rss = idle;
  if (!alive) process.exitCode = 1;
} finally {
  await relay?.stop();
  const accepted = await sink.stop();
  report.sink = accepted;
  rmSync(dir, { recursive: true, force: true });
}
mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
writeFileSync(join(ROOT, 'bench', 'results', 'soak.json'), `${JSON.stringify({ date: new Date().toISOString(), ...report }, null, 1)}\n`);
process.exit(process.exitCode ?? 0);
