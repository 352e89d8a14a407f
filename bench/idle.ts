// `npm run bench:idle`: idle memory only, quicker and steadier than the
// memory cases of `npm run bench`.  Starts a bare `node` and qrelay (and
// the build of QRELAY_BENCH_BASE as "qrelay base") one after another,
// several times each in interleaved order, with the bench's config and
// production settings (bench/lib/servers.ts), and reads each one's VmRSS
// 3 s after it is ready, when it has settled (qrelay gives back its
// startup memory after 1 s).  One start varies by a few tenths of a MB,
// so the medians are what to compare.
//   npm run bench:idle [-- --starts N]   (default 5)
//   QRELAY_BENCH_BASE=/path/to/other/qrelay npm run bench:idle
//   QRELAY_BENCH_NODE_OPTIONS='--flag …' npm run bench:idle   (options for the qrelay row's `node`)
//   QRELAY_BENCH_IDLE_EXTRA=/tree/a:/tree/b npm run bench:idle   (more rows: those trees' dist/main.js)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BARE } from './lib/memory.js';
import { numberOption } from './lib/options.js';
import { timeLimit } from './lib/processes.js';
import { treeRss } from './lib/proc.js';
import { startBareNode, startQrelay } from './lib/servers.js';
import { median } from './lib/stats.js';

const STARTS = numberOption('starts', 5);
const SETTLE_MS = 3000;
const BASE = process.env.QRELAY_BENCH_BASE;
const NODE_OPTIONS = process.env.QRELAY_BENCH_NODE_OPTIONS?.split(' ').filter((o) => o !== '');
timeLimit(STARTS * 3 * 30_000, 'bench:idle');

const dir = mkdtempSync(join(tmpdir(), 'qrelay-bench-idle-'));
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Each way of starting something, by its name in the table: resolves to its resident bytes once settled. */
const rows = new Map<string, () => Promise<number>>([
  [
    BARE,
    async () => {
      const bare = startBareNode();
      await sleep(SETTLE_MS);
      const bytes = treeRss(bare.pid);
      await bare.stop();
      return bytes;
    },
  ],
]);
const qrelay = (name: string, main: string | undefined, nodeOptions: readonly string[] | undefined) => async (): Promise<number> => {
  const relay = await startQrelay({ name, dir: join(dir, `${name.replace(/\W/g, '-')}-${Date.now()}`), sink: join(dir, 'sink.sock'), workers: 1, main, nodeOptions });
  if (relay === undefined) throw new Error(`${name} did not start`);
  await sleep(SETTLE_MS);
  const bytes = treeRss(relay.pid);
  await relay.stop();
  return bytes;
};
rows.set('qrelay', qrelay('qrelay', undefined, NODE_OPTIONS));
if (BASE !== undefined) rows.set('qrelay base', qrelay('qrelay base', join(BASE, 'dist', 'main.js'), undefined));
for (const other of (process.env.QRELAY_BENCH_IDLE_EXTRA ?? '').split(':').filter((p) => p !== '')) rows.set(other, qrelay(other, join(other, 'dist', 'main.js'), undefined));

const samples = new Map<string, number[]>([...rows.keys()].map((name) => [name, []]));
try {
  for (let start = 0; start < STARTS; start++) {
    // the order rotates, so that a slow moment of the machine hits all alike
    const names = [...rows.keys()];
    for (let i = 0; i < names.length; i++) {
      const name = names[(start + i) % names.length]!;
      samples.get(name)!.push(await rows.get(name)!());
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}

const MB = 1e6;
const bare = median(samples.get(BARE)!);
process.stdout.write(`idle RSS, MB = 10^6 bytes (MiB: × 0.954), ${STARTS} starts each, ${SETTLE_MS / 1000} s after ready; the bench's config\n`);
for (const [name, values] of samples) {
  const m = median(values);
  const ratio = name === BARE ? '' : `  ${(m / bare).toFixed(3)}× bare`;
  process.stdout.write(`${name.padEnd(12)} median ${(m / MB).toFixed(2)}${ratio}   starts: ${values.map((v) => (v / MB).toFixed(2)).join(' ')}\n`);
}
