// The printed result of `npm run bench`: one table of every case (medians
// over the rounds, with each row's ratio to the floor and to the C++
// original of the same case), the memory cases, and the issue's targets
// checked against the same run.  Returns the same figures for the JSON file.
import { availableParallelism } from 'node:os';
import type { Cell } from './cases.js';
import type { Sample } from './measure.js';
import { BARE, type MemoryReport } from './memory.js';
import { median, round } from './stats.js';
import { formatTable } from './table.js';
import { ceilingJson, describeCeiling, workersCeiling } from './workers-ceiling.js';

export const FLOOR = 'plain-Node floor';
export const ORIGINAL = 'c++ original';
const QRELAY = 'qrelay';
const WORKERS2 = 'qrelay --workers 2';
const QUIET = 'qrelay QRELAY_LOG=quiet';

export interface Run {
  readonly rounds: number;
  readonly seconds: number;
  readonly quick: boolean;
  readonly results: ReadonlyMap<Cell, Sample[]>;
  readonly memory: MemoryReport;
  readonly ref: string | undefined;
  /** Relays left out, with the reason. */
  readonly skipped: readonly string[];
}

interface Row {
  readonly cell: Cell;
  readonly samples: readonly Sample[];
  /** Half the range of CPU/mail over the rounds, relative to the median. */
  readonly cpuSpread: number;
  readonly cpuPerMail: number;
  readonly faultsPerMail: number;
  readonly mailsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly rssBytes: number;
  readonly generatorCpuPerMail: number;
  readonly errors: number;
  readonly nonK: number;
  readonly backlogFull: number;
  readonly firstBad: string;
}

function summarise(cell: Cell, samples: readonly Sample[]): Row {
  const med = (pick: (s: Sample) => number): number => median(samples.map(pick).filter(Number.isFinite));
  const cpus = samples.map((s) => s.cpuPerMail).filter(Number.isFinite);
  return {
    cell,
    samples,
    cpuSpread: cpus.length < 2 ? NaN : (Math.max(...cpus) - Math.min(...cpus)) / 2 / med((s) => s.cpuPerMail),
    cpuPerMail: med((s) => s.cpuPerMail),
    faultsPerMail: med((s) => s.faultsPerMail),
    mailsPerSecond: med((s) => s.mailsPerSecond),
    megabytesPerSecond: med((s) => s.megabytesPerSecond),
    p50Ms: med((s) => s.p50Ms),
    p99Ms: med((s) => s.p99Ms),
    rssBytes: samples[samples.length - 1]!.rssBytes,
    generatorCpuPerMail: med((s) => s.generatorCpuPerMail),
    errors: samples.reduce((sum, s) => sum + s.errors, 0),
    nonK: samples.reduce((sum, s) => sum + s.nonK, 0),
    backlogFull: samples.reduce((sum, s) => sum + s.backlogFull, 0),
    firstBad: samples.find((s) => s.firstBad !== '-')?.firstBad ?? '',
  };
}

const MB = 1e6;
const fixed = (value: number, digits = 0): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');
const ratio = (a: number | undefined, b: number | undefined): string => (a !== undefined && b !== undefined && b > 0 && Number.isFinite(a / b) ? `${(a / b).toFixed(2)}×` : '-');
/** A row's figure over a baseline's, paired by round (same noise), then the median; undefined without a baseline. */
function paired(row: Row | undefined, base: Row | undefined, pick: (s: Sample) => number): number | undefined {
  if (row === undefined || base === undefined) return undefined;
  const ratios = row.samples.map((s, i) => pick(s) / pick(base.samples[i] ?? s)).filter(Number.isFinite);
  return ratios.length === 0 ? undefined : median(ratios);
}
const times = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(2)}×`);
const mb = (bytes: number | undefined): string => (bytes === undefined ? '-' : (bytes / MB).toFixed(0));

export function printReport(run: Run): Record<string, unknown> {
  const rows = [...run.results].map(([cell, samples]) => summarise(cell, samples));
  const sameCase = (row: Row, relay: string): Row | undefined =>
    rows.find((r) => r.cell.relay === relay && r.cell.policy === row.cell.policy && r.cell.size === row.cell.size && r.cell.clients === row.cell.clients);
  const find = (relay: string, policy: string, size: string, clients: number): Row | undefined =>
    rows.find((r) => r.cell.relay === relay && r.cell.policy === policy && r.cell.size === size && r.cell.clients === clients);

  const out = (text: string): boolean => process.stdout.write(`${text}\n`);
  out(
    `\nqrelay bench: ${run.rounds} interleaved round(s) of ${run.seconds} s per case, medians; C load generator, closed loop, one connection per mail, Unix sockets.\n` +
      `CPU = the relay's utime+stime per answered mail (its whole process tree, including programs it runs); for "generator -> C sink" it is the sink's.\n` +
      `spread: half the range of CPU/mail over the rounds. faults/mail: the relay's minor page faults per mail (fresh memory touched; their price varies a lot between machines). ×floor / ×C++: this row divided by the same case on the plain-Node floor / the C++ original in the same round, median over the rounds${run.ref === undefined ? ' (C++: set QRELAY_BENCH_REF)' : ''}.\n` +
      (run.skipped.length === 0 ? '' : `skipped: ${run.skipped.join('; ')}\n`),
  );
  const table = rows.map((r) => {
    const f = sameCase(r, FLOOR);
    const c = sameCase(r, ORIGINAL);
    const problems = r.errors + r.nonK > 0 ? `${r.errors} err ${r.nonK} non-K ${r.firstBad}`.trim() : '';
    const cpu = (s: Sample): number => s.cpuPerMail;
    const rate = (s: Sample): number => s.mailsPerSecond;
    return [
      r.cell.policy,
      r.cell.size,
      r.cell.clients,
      r.cell.relay,
      fixed(r.cpuPerMail),
      Number.isFinite(r.cpuSpread) ? `±${(r.cpuSpread * 100).toFixed(0)}%` : '-',
      fixed(r.faultsPerMail, r.faultsPerMail < 10 ? 1 : 0),
      times(paired(r, f, cpu)),
      times(paired(r, c, cpu)),
      fixed(r.mailsPerSecond),
      times(paired(r, f, rate)),
      times(paired(r, c, rate)),
      fixed(r.megabytesPerSecond, r.megabytesPerSecond < 100 ? 1 : 0),
      fixed(r.p50Ms, 2),
      fixed(r.p99Ms, 2),
      times(paired(r, c, (s) => s.p99Ms)),
      mb(r.rssBytes),
      fixed(r.generatorCpuPerMail),
      r.backlogFull,
      problems === '' ? 'ok' : problems,
    ];
  });
  out(
    formatTable(
      ['policy', 'size', 'clients', 'relay', 'CPU µs/mail', 'spread', 'faults/mail', '×floor', '×C++', 'mails/s', '×floor', '×C++', 'MB/s', 'p50 ms', 'p99 ms', 'p99 ×C++', 'RSS MB', 'gen µs/mail', 'backlog full', 'answers'],
      table,
    ),
  );

  const { idle, afterMany, burst } = run.memory;
  const bare = idle.get(BARE);
  // MB here are 10^6 bytes (ps and /proc/PID/status count KiB: 59.0 MB is 56.3 MiB), with a decimal: starts vary by a few tenths
  out(`\nidle RSS (MB = 10^6 bytes, before any mail): ${[...idle].map(([name, bytes]) => `${name} ${bytes === undefined ? '-' : (bytes / MB).toFixed(1)}${name === BARE ? '' : ` (${ratio(bytes, bare)} bare)`}`).join(', ')}`);
  if (afterMany.size > 0) {
    out(
      `RSS after ${[...afterMany.values()][0]!.mails} relayed 2 KB mails (8 clients), MB: ` +
        [...afterMany].map(([name, m]) => `${name} ${mb(m.bytes)} (idle +${mb(m.bytes - (idle.get(name) ?? 0))}; 10 s later idle +${mb(m.after10s - (idle.get(name) ?? 0))})`).join(', '),
    );
  }
  if (burst.size > 0) {
    out(`burst of 50 concurrent 16 MiB mails, RSS MB (peak / at the last answer / 5 s later, vs idle):`);
    for (const [name, b] of burst) {
      out(`  ${name}: ${mb(b.peak)} / ${mb(b.atEnd)} / ${mb(b.after5s)} (idle +${mb(b.after5s - (idle.get(name) ?? 0))})${b.errors > 0 ? `, ${b.errors} failed` : ''}`);
    }
  }

  // the targets of the performance issue, from this run
  const targets: { target: string; value: string; met: boolean | undefined }[] = [];
  const check = (target: string, value: number | undefined, limit: number, higherIsBetter = false, unit = '×'): void => {
    const known = value !== undefined && Number.isFinite(value);
    targets.push({
      target,
      value: known ? `${value.toFixed(2)}${unit}` : 'not measured',
      met: known ? (higherIsBetter ? value >= limit : value <= limit) : undefined,
    });
  };
  const q8 = find(QRELAY, 'relay', '2 KB', 8);
  const cpu = (s: Sample): number => s.cpuPerMail;
  const relayRow = (relay: string, size: string, clients: number): Row | undefined => find(relay, 'relay', size, clients);
  check('CPU/mail 2 KB relay, 8 clients ≤ 1.25× floor', paired(q8, relayRow(FLOOR, '2 KB', 8), cpu), 1.25);
  check('CPU/mail 1 MiB relay ≤ 1.0× C++', paired(relayRow(QRELAY, '1 MiB', 8), relayRow(ORIGINAL, '1 MiB', 8), cpu), 1.0);
  check('mails/s 2 KB × 8, --workers 2 ≥ 1.3× --workers 1', paired(relayRow(WORKERS2, '2 KB', 8), q8, (s) => s.mailsPerSecond), 1.3, true);
  check('idle RSS ≤ 1.4× bare node', idle.has(QRELAY) && bare !== undefined ? idle.get(QRELAY)! / bare : undefined, 1.4);
  const many = afterMany.get(QRELAY);
  check('RSS after 100 000 mails ≤ idle + 30 MB', many === undefined ? undefined : (many.bytes - idle.get(QRELAY)!) / MB, 30, false, ' MB');
  const b = burst.get(QRELAY);
  check('RSS 5 s after the 16 MiB burst ≤ idle + 50 MB', b === undefined ? undefined : (b.after5s - idle.get(QRELAY)!) / MB, 50, false, ' MB');
  const k = relayRow(QRELAY, '2 KB', 1000);
  const kc = relayRow(ORIGINAL, '2 KB', 1000);
  check(`1 000 clients: connects that found the backlog full = 0 (C++: ${kc?.backlogFull ?? 'not measured'})`, k?.backlogFull, 0, false, '');
  check('1 000 clients: p99 ≤ 2× C++', paired(k, kc, (s) => s.p99Ms), 2);
  const loud = find(QRELAY, 'relay', '2 KB', 8);
  const silent = find(QUIET, 'relay', '2 KB', 8);
  out(`\nper-mail log line: CPU/mail default ${fixed(loud?.cpuPerMail ?? NaN)} µs, QRELAY_LOG=quiet ${fixed(silent?.cpuPerMail ?? NaN)} µs (quiet/default, paired by round: ${times(paired(silent, loud, cpu))})`);
  out(`\ntargets (issue 9), from this run:`);
  for (const t of targets) out(`  ${t.met === undefined ? 'n/a ' : t.met ? 'met ' : 'NOT '} ${t.target}: ${t.value}`);
  const w2 = relayRow(WORKERS2, '2 KB', 8);
  const cores = availableParallelism();
  const ceiling = q8 === undefined || w2 === undefined ? undefined : workersCeiling(q8.samples, w2.samples, cores);
  if (ceiling !== undefined) out(`\n${describeCeiling(ceiling, cores)}`);

  return {
    rounds: run.rounds,
    seconds_per_case: run.seconds,
    quick: run.quick,
    reference: run.ref ?? null,
    cases: rows.map((r) => ({
      relay: r.cell.relay,
      policy: r.cell.policy,
      size: r.cell.size,
      clients: r.cell.clients,
      cpu_us_per_mail: round(r.cpuPerMail, 1),
      minor_faults_per_mail: round(r.faultsPerMail, 1),
      mails_per_s: round(r.mailsPerSecond),
      MB_per_s: round(r.megabytesPerSecond, 1),
      p50_ms: round(r.p50Ms, 3),
      p99_ms: round(r.p99Ms, 3),
      rss_bytes: r.rssBytes,
      generator_cpu_us_per_mail: round(r.generatorCpuPerMail, 1),
      errors: r.errors,
      non_k: r.nonK,
      backlog_full: r.backlogFull,
      rounds: run.results.get(r.cell)!.map((s) => ({ cpu_us_per_mail: round(s.cpuPerMail, 1), mails_per_s: round(s.mailsPerSecond), p99_ms: s.p99Ms })),
    })),
    idle_rss_bytes: Object.fromEntries(idle),
    after_many: Object.fromEntries(afterMany),
    burst_16mib: Object.fromEntries(burst),
    targets,
    workers_ceiling: ceiling === undefined ? null : ceilingJson(ceiling),
  };
}
