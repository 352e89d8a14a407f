// The arithmetic of `npm run bench:recovery`: CPU per mail in the short
// phases after a burst, against the steady state measured before it.

/** One phase: the daemon's CPU µs over it and the mails answered in it. */
export interface Phase {
  readonly cpuUs: number;
  readonly mails: number;
}

export interface Recovery {
  /** µs per mail before the burst (all steady phases together). */
  readonly steadyUsPerMail: number;
  /** µs per mail in each phase after the burst. */
  readonly afterUsPerMail: readonly number[];
  /** CPU µs the phases after the burst cost beyond the steady price of their mails (never below 0 per phase). */
  readonly excessUs: number;
}

function perMail(p: Phase): number {
  return p.mails > 0 ? p.cpuUs / p.mails : NaN;
}

/** CPU per mail before and after the burst, and what the recovery cost beyond the steady state. */
export function recovery(steady: readonly Phase[], after: readonly Phase[]): Recovery {
  const total = steady.reduce((sum, p) => ({ cpuUs: sum.cpuUs + p.cpuUs, mails: sum.mails + p.mails }), { cpuUs: 0, mails: 0 });
  const steadyUsPerMail = perMail(total);
  let excessUs = 0;
  for (const p of after) excessUs += Math.max(0, p.cpuUs - steadyUsPerMail * p.mails);
  return { steadyUsPerMail, afterUsPerMail: after.map(perMail), excessUs };
}

/** The median of `values` (NaN for none). */
export function median(values: readonly number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
