// Measuring variants in interleaved rounds: every round measures every
// variant once, in an order that changes from round to round (rotated by a
// different share of the list each round, and reversed every other round),
// so that machine noise and drift (other processes, CPU frequency, a warming
// JIT, the previous variant's process still cleaning up) hit all variants
// alike instead of whichever happened to run last or next to a given one.
//
// Variants that leave a relay in a different state are measured in groups,
// not mixed: V8 keeps the optimised code of a function made anew for each
// connection (a closure) only while one such closure is alive; a full
// collection that finds none drops it, and the next connections run
// unoptimised until V8 has compiled them again (about a second of 2-3x the
// CPU per 2 KB mail).  A 16 MiB round is made of such collections, taken
// while no small mail's closures exist, so a 2 KB round right after one
// measured the recompiling, not the relay (240 vs 340-400 µs per mail for
// the same daemon in one run).  So the bench measures the small sizes
// first, then the larger ones (see `ascending`).

/** `values` rotated left by `by`. */
function rotate<T>(values: readonly T[], by: number): T[] {
  const shift = by % values.length;
  return [...values.slice(shift), ...values.slice(0, shift)];
}

/** The order of round `round` of `rounds`. */
export function roundOrder<T>(values: readonly T[], round: number, rounds: number): T[] {
  const rotated = rotate(values, Math.floor((round * values.length) / Math.max(rounds, 1)));
  return round % 2 === 1 ? rotated.reverse() : rotated;
}

/** Runs `measure` for each variant in each of `rounds` rounds; results per variant, indexed by round. */
export async function interleaved<V, R>(rounds: number, variants: readonly V[], measure: (variant: V) => Promise<R>): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of roundOrder(variants, round, rounds)) results.get(variant)!.push(await measure(variant));
  }
  return results;
}

/**
 * `values` in groups of equal `rank`, the groups in ascending rank and each
 * in the order of `values`: the bench's rounds, smallest mails first.
 */
export function ascending<T>(values: readonly T[], rank: (value: T) => number): T[][] {
  const ranks = [...new Set(values.map(rank))].sort((a, b) => a - b);
  return ranks.map((r) => values.filter((v) => rank(v) === r));
}
