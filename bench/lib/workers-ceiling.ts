// What `--workers 2` can reach on this machine at most, from the same run.
// The load generator and the sink share the cores with the relay, so with
// every core busy the run can answer at most (cores / CPU per mail of
// relay + generator + sink) mails per second.  With one worker, the daemon
// fills one core and the others are partly idle; with two, every process
// shares every core, and each one's CPU per mail is what it costs then
// (preemptions, wake-ups across cores, colder caches).  This file turns
// the rows of `--workers 1` and `--workers 2` into that ceiling, paired by
// round, so the 1.3× target can be judged against what the machine
// allows rather than against what the daemon alone costs.
import type { Sample } from './measure.js';
import { median, round } from './stats.js';

export interface WorkersCeiling {
  /** Cores busy (anything on the machine) during the runs: medians of `--workers 1`'s and `--workers 2`'s rounds. */
  readonly busyCores: readonly [number, number];
  /** Cores busy with anything else than relay, generator and sink (other work on a shared machine): medians. */
  readonly otherCores: readonly [number, number];
  /** CPU µs per mail: relay (all its processes), generator, sink, and their sum; medians. */
  readonly perMail: readonly [Costs, Costs];
  /** cores / sum of `--workers 2`'s CPU per mail, over `--workers 1`'s mails/s: median of the rounds. */
  readonly ceiling: number;
  /** What the sum would have to be for 1.3×: cores / (1.3 × `--workers 1`'s mails/s); median of the rounds. */
  readonly neededForTarget: number;
}

interface Costs {
  readonly relay: number;
  readonly generator: number;
  readonly sink: number;
  readonly sum: number;
}

const costs = (s: Sample): Costs => ({ relay: s.cpuPerMail, generator: s.generatorCpuPerMail, sink: s.sinkCpuPerMail, sum: s.cpuPerMail + s.generatorCpuPerMail + s.sinkCpuPerMail });

const finite = (values: number[]): number[] => values.filter(Number.isFinite);

/** The ceiling from the two rows' rounds (index i of each is the same round); undefined when a figure is missing. */
export function workersCeiling(one: readonly Sample[], two: readonly Sample[], cores: number): WorkersCeiling | undefined {
  const rounds = Math.min(one.length, two.length);
  if (rounds === 0) return undefined;
  const ceilings = finite(two.slice(0, rounds).map((s, i) => (cores * 1e6) / costs(s).sum / one[i]!.mailsPerSecond));
  if (ceilings.length === 0) return undefined;
  const medianCosts = (samples: readonly Sample[]): Costs => {
    const pick = (key: keyof Costs): number => median(finite(samples.map((s) => costs(s)[key])));
    return { relay: pick('relay'), generator: pick('generator'), sink: pick('sink'), sum: pick('sum') };
  };
  const other = (samples: readonly Sample[]): number => median(finite(samples.map((s) => s.busyCores - (costs(s).sum * s.mailsPerSecond) / 1e6)));
  return {
    otherCores: [other(one), other(two)],
    busyCores: [median(finite(one.map((s) => s.busyCores))), median(finite(two.map((s) => s.busyCores)))],
    perMail: [medianCosts(one), medianCosts(two)],
    ceiling: median(ceilings),
    neededForTarget: median(finite(one.slice(0, rounds).map((s) => (cores * 1e6) / (1.3 * s.mailsPerSecond)))),
  };
}

/** One paragraph for the report. */
export function describeCeiling(c: WorkersCeiling, cores: number): string {
  const line = (name: string, i: 0 | 1): string => {
    const p = c.perMail[i];
    return `  ${name}: ${c.busyCores[i].toFixed(2)} of ${cores} cores busy (${c.otherCores[i].toFixed(2)} by other processes); CPU µs/mail relay ${p.relay.toFixed(0)} + generator ${p.generator.toFixed(0)} + sink ${p.sink.toFixed(0)} = ${p.sum.toFixed(0)}`;
  };
  return [
    `--workers on this machine (2 KB × 8; the generator and the sink share the ${cores} cores):`,
    line('--workers 1', 0),
    line('--workers 2', 1),
    `  with every core busy at --workers 2's CPU per mail: at most ${c.ceiling.toFixed(2)}× --workers 1's mails/s; 1.3× needs relay + generator + sink ≤ ${c.neededForTarget.toFixed(0)} µs/mail`,
  ].join('\n');
}

/** The same figures for the JSON file. */
export function ceilingJson(c: WorkersCeiling): Record<string, unknown> {
  const j = (p: Costs): Record<string, number> => ({ relay: round(p.relay, 1), generator: round(p.generator, 1), sink: round(p.sink, 1), sum: round(p.sum, 1) });
  return {
    busy_cores: c.busyCores.map((b) => round(b, 2)),
    other_cores: c.otherCores.map((b) => round(b, 2)),
    cpu_us_per_mail: { workers_1: j(c.perMail[0]), workers_2: j(c.perMail[1]) },
    ceiling_ratio: round(c.ceiling, 2),
    sum_needed_for_1_3: round(c.neededForTarget, 1),
  };
}
