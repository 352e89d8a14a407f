// Measuring variants in interleaved rounds: every round measures every
// variant once, in an order that changes from round to round (rotated by a
// different share of the list each round, and reversed every other round),
// so that machine noise and drift (other processes, CPU frequency, a warming
// JIT, the previous variant's process still cleaning up) hit all variants
// alike instead of whichever happened to run last or next to a given one.

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
