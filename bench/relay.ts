// Relay throughput: mails per second through qrelay (`m:connect(SINK)`) with
// 8 concurrent clients and with 1, 2 KB mails, Unix sockets only.  Baselines
// from the same run, interleaved in rounds: the clients talking directly to
// the sink (the floor of client + sink), and qrelay with `m:discard()` (qrelay
// without the downstream).  Also the CPU time each process spends per mail,
// read from /proc before and after each measurement.
// Prints a table, then one JSON line per result.  Run after `npx tsc -p .`:
//   node --import tsx bench/relay.ts
// BENCH_CPU_PROFILE_DIR=DIR writes a V8 CPU profile of the relaying daemon there.
import { cpuPer, ownCpu, processCpu, type CpuTime } from './lib/cpu-time.js';
import { runPool } from './lib/qmqp-client.js';
import { interleaved } from './lib/rounds.js';
import { median, round } from './lib/stats.js';
import { formatTable } from './lib/table.js';
import { MESSAGE_BYTES, REQUEST, startTargets, type Target } from './lib/targets.js';

const MAILS_PER_ROUND = 3_000;
const ROUNDS = 3;
const WARMUP_MAILS = 1_000;
const CLIENT_COUNTS = [8, 1] as const;

interface Variant {
  readonly target: Target;
  readonly clients: number;
}

interface Sample {
  readonly mailsPerSecond: number;
  /** CPU time per mail: the daemon (none for `direct`), the sink, this process (the clients). */
  readonly daemonCpu: CpuTime | undefined;
  readonly sinkCpu: CpuTime;
  readonly clientCpu: CpuTime;
}

const targets = await startTargets({ relayCpuProfileDir: process.env.BENCH_CPU_PROFILE_DIR });

async function measure(variant: Variant, mails: number): Promise<Sample> {
  const { target, clients } = variant;
  const daemonPid = target.daemonPid;
  const daemonBefore = daemonPid === undefined ? undefined : processCpu(daemonPid);
  const sinkBefore = processCpu(targets.sinkPid);
  const clientBefore = ownCpu();
  const seconds = await runPool({ path: target.path, request: REQUEST, expected: target.expected, mails, concurrency: clients });
  return {
    mailsPerSecond: mails / seconds,
    clientCpu: cpuPer(clientBefore, ownCpu(), mails),
    sinkCpu: cpuPer(sinkBefore, processCpu(targets.sinkPid), mails),
    daemonCpu: daemonPid === undefined || daemonBefore === undefined ? undefined : cpuPer(daemonBefore, processCpu(daemonPid), mails),
  };
}

let sinkMails: number;
let results: Map<Variant, Sample[]>;
const variants: Variant[] = CLIENT_COUNTS.flatMap((clients) => targets.list.map((target) => ({ target, clients })));
try {
  for (const variant of variants) await measure(variant, WARMUP_MAILS);
  results = await interleaved(ROUNDS, variants, (variant) => measure(variant, MAILS_PER_ROUND));
} finally {
  sinkMails = await targets.stop();
}

// Every mail sent to `direct` or `relay` must have reached the sink, complete.
const expectedSinkMails = variants.filter((v) => v.target.name !== 'discard').length * (WARMUP_MAILS + ROUNDS * MAILS_PER_ROUND);
if (sinkMails !== expectedSinkMails) throw new Error(`the sink accepted ${sinkMails} mails, expected ${expectedSinkMails}`);

const samplesOf = (clients: number, name: Target['name']): Sample[] =>
  results.get(variants.find((v) => v.clients === clients && v.target.name === name)!)!;
/** Ratio of two variants' throughput, paired within each round (same noise), then the median. */
const ratio = (clients: number, a: Target['name'], b: Target['name']): number => {
  const bs = samplesOf(clients, b);
  return median(samplesOf(clients, a).map((s, i) => s.mailsPerSecond / bs[i]!.mailsPerSecond));
};

interface CpuSummary {
  readonly total: number;
  readonly system: number;
}
/** Median CPU µs per mail over the rounds; undefined where the process takes no part in the variant. */
function cpuSummary(variant: Variant, pick: (s: Sample) => CpuTime | undefined): CpuSummary | undefined {
  // The sink does no work for `discard`: its figure there is noise.
  if (pick === sinkCpu && variant.target.name === 'discard') return undefined;
  const times = results.get(variant)!.map(pick);
  if (!times.every((t): t is CpuTime => t !== undefined)) return undefined;
  return { total: median(times.map((t) => t.user + t.system)), system: median(times.map((t) => t.system)) };
}
const daemonCpu = (s: Sample): CpuTime | undefined => s.daemonCpu;
const sinkCpu = (s: Sample): CpuTime => s.sinkCpu;
const clientCpu = (s: Sample): CpuTime => s.clientCpu;

const cpuCell = (cpu: CpuSummary | undefined): string => (cpu === undefined ? '-' : `${cpu.total.toFixed(0)} (sys ${cpu.system.toFixed(0)})`);
const rows = variants.map((variant) => {
  const rates = results.get(variant)!.map((s) => s.mailsPerSecond);
  return [
    variant.clients,
    variant.target.name,
    Math.round(median(rates)),
    `${Math.round(Math.min(...rates))}–${Math.round(Math.max(...rates))}`,
    cpuCell(cpuSummary(variant, daemonCpu)),
    cpuCell(cpuSummary(variant, sinkCpu)),
    cpuCell(cpuSummary(variant, clientCpu)),
  ];
});
process.stdout.write(
  `relay throughput: ${MESSAGE_BYTES}-byte mails, ${ROUNDS} interleaved rounds of ${MAILS_PER_ROUND} mails (after ${WARMUP_MAILS} warm-up), medians\n` +
    `${formatTable(['clients', 'variant', 'mails/s', 'range', 'qrelay CPU µs/mail', 'sink CPU µs/mail', 'client CPU µs/mail'], rows)}\n`,
);
for (const clients of CLIENT_COUNTS) {
  process.stdout.write(
    `${clients} client(s): relay/direct ${ratio(clients, 'relay', 'direct').toFixed(2)}, relay/discard ${ratio(clients, 'relay', 'discard').toFixed(2)}\n`,
  );
}

for (const variant of variants) {
  const samples = results.get(variant)!;
  const cpuFields = (name: string, cpu: CpuSummary | undefined): Record<string, number | null> => ({
    [`${name}_cpu_us_per_mail`]: cpu === undefined ? null : round(cpu.total, 1),
    [`${name}_sys_us_per_mail`]: cpu === undefined ? null : round(cpu.system, 1),
  });
  const line = {
    bench: 'relay',
    variant: variant.target.name,
    clients: variant.clients,
    message_bytes: MESSAGE_BYTES,
    mails_per_round: MAILS_PER_ROUND,
    rounds: ROUNDS,
    mails_per_s: round(median(samples.map((s) => s.mailsPerSecond))),
    mails_per_s_rounds: samples.map((s) => round(s.mailsPerSecond)),
    ...cpuFields('qrelay', cpuSummary(variant, daemonCpu)),
    ...cpuFields('sink', cpuSummary(variant, sinkCpu)),
    ...cpuFields('client', cpuSummary(variant, clientCpu)),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
for (const clients of CLIENT_COUNTS) {
  const line = { bench: 'relay', clients, relay_vs_direct: round(ratio(clients, 'relay', 'direct'), 3), relay_vs_discard: round(ratio(clients, 'relay', 'discard'), 3) };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
