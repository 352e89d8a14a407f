// The printed result of `npm run bench`: one table of every case (medians
// over the rounds, with each row's ratio to the floor and to the C++
// original of the same case), the memory cases, and the issue's targets
// checked against the same run.  Returns the same figures for the JSON file.
import type { Cell } from './cases.js';
import type { Sample } from './measure.js';
import { median, round } from './stats.js';
import { formatTable } from './table.js';

export const FLOOR = 'plain-Node floor';
export const ORIGINAL = 'c++ original';
const QRELAY = 'qrelay';
const WORKERS2 = 'qrelay --workers 2';
const QUIET = 'qrelay QRELAY_LOG=quiet';
const BARE = 'bare node';

export interface MemoryReport {
  /** Resident bytes before any mail, per relay (and a bare node). */
  readonly idle: ReadonlyMap<string, number>;
  readonly afterMany: ReadonlyMap<string, { mails: number; bytes: number }>;
  readonly burst: ReadonlyMap<string, { peak: number; atEnd: number; after5s: number; errors: number }>;
}

export interface Run {
  readonly rounds: number;
  readonly seconds: number;
  readonly quick: boolean;
  readonly results: ReadonlyMap<Cell, Sample[]>;
  readonly memory: MemoryReport;
  readonly ref: string | undefined;
}

interface Row {
  readonly cell: Cell;
  readonly cpuPerMail: number;
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
  return {
    cell,
    cpuPerMail: med((s) => s.cpuPerMail),
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
      `×floor / ×C++: this row divided by the same case on the plain-Node floor / the C++ original, measured in this run${run.ref === undefined ? ' (C++: set QRELAY_BENCH_REF)' : ''}.\n`,
  );
  const table = rows.map((r) => {
    const f = sameCase(r, FLOOR);
    const c = sameCase(r, ORIGINAL);
    const problems = r.errors + r.nonK > 0 ? `${r.errors} err ${r.nonK} non-K ${r.firstBad}`.trim() : '';
    return [
      r.cell.policy,
      r.cell.size,
      r.cell.clients,
      r.cell.relay,
      fixed(r.cpuPerMail),
      ratio(r.cpuPerMail, f?.cpuPerMail),
      ratio(r.cpuPerMail, c?.cpuPerMail),
      fixed(r.mailsPerSecond),
      ratio(r.mailsPerSecond, f?.mailsPerSecond),
      ratio(r.mailsPerSecond, c?.mailsPerSecond),
      fixed(r.megabytesPerSecond, r.megabytesPerSecond < 100 ? 1 : 0),
      fixed(r.p50Ms, 2),
      fixed(r.p99Ms, 2),
      ratio(r.p99Ms, c?.p99Ms),
      mb(r.rssBytes),
      fixed(r.generatorCpuPerMail),
      r.backlogFull,
      problems === '' ? 'ok' : problems,
    ];
  });
  out(
    formatTable(
      ['policy', 'size', 'clients', 'relay', 'CPU µs/mail', '×floor', '×C++', 'mails/s', '×floor', '×C++', 'MB/s', 'p50 ms', 'p99 ms', 'p99 ×C++', 'RSS MB', 'gen µs/mail', 'backlog full', 'answers'],
      table,
    ),
  );

  const { idle, afterMany, burst } = run.memory;
  const bare = idle.get(BARE);
  out(`\nidle RSS (MB, before any mail): ${[...idle].map(([name, bytes]) => `${name} ${mb(bytes)}${name === BARE ? '' : ` (${ratio(bytes, bare)} bare)`}`).join(', ')}`);
  if (afterMany.size > 0) {
    out(
      `RSS after ${[...afterMany.values()][0]!.mails} relayed 2 KB mails (8 clients), MB: ` +
        [...afterMany].map(([name, m]) => `${name} ${mb(m.bytes)} (idle +${mb(m.bytes - (idle.get(name) ?? 0))})`).join(', '),
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
  const cpuOf = (row: Row | undefined): number | undefined => row?.cpuPerMail;
  const div = (a: number | undefined, b: number | undefined): number | undefined => (a === undefined || b === undefined || b === 0 ? undefined : a / b);
  check('CPU/mail 2 KB relay, 8 clients ≤ 1.25× floor', div(cpuOf(q8), cpuOf(find(FLOOR, 'relay', '2 KB', 8))), 1.25);
  check('CPU/mail 1 MiB relay ≤ 1.0× C++', div(cpuOf(find(QRELAY, 'relay', '1 MiB', 8)), cpuOf(find(ORIGINAL, 'relay', '1 MiB', 8))), 1.0);
  check('mails/s 2 KB × 8, --workers 2 ≥ 1.3× --workers 1', div(find(WORKERS2, 'relay', '2 KB', 8)?.mailsPerSecond, q8?.mailsPerSecond), 1.3, true);
  check('idle RSS ≤ 1.4× bare node', div(idle.get(QRELAY), bare), 1.4);
  const many = afterMany.get(QRELAY);
  check('RSS after 100 000 mails ≤ idle + 30 MB', many === undefined ? undefined : (many.bytes - idle.get(QRELAY)!) / MB, 30, false, ' MB');
  const b = burst.get(QRELAY);
  check('RSS 5 s after the 16 MiB burst ≤ idle + 50 MB', b === undefined ? undefined : (b.after5s - idle.get(QRELAY)!) / MB, 50, false, ' MB');
  const k = find(QRELAY, 'relay', '2 KB', 1000);
  check('1 000 clients: connects that found the backlog full = 0', k?.backlogFull, 0, false, '');
  check('1 000 clients: p99 ≤ 2× C++', div(k?.p99Ms, find(ORIGINAL, 'relay', '2 KB', 1000)?.p99Ms), 2);
  const loud = find(QRELAY, 'relay', '2 KB', 8);
  const silent = find(QUIET, 'relay', '2 KB', 8);
  out(`\nper-mail log line: CPU/mail default ${fixed(loud?.cpuPerMail ?? NaN)} µs, QRELAY_LOG=quiet ${fixed(silent?.cpuPerMail ?? NaN)} µs (quiet/default ${ratio(silent?.cpuPerMail, loud?.cpuPerMail)})`);
  out(`\ntargets (issue 9), from this run:`);
  for (const t of targets) out(`  ${t.met === undefined ? 'n/a ' : t.met ? 'met ' : 'NOT '} ${t.target}: ${t.value}`);

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
  };
}
