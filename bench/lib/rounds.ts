// Measuring variants in interleaved rounds: every round measures every
// variant once, in an order that rotates from round to round, so that
// machine noise and drift (other processes, CPU frequency, a warming JIT)
// hit all variants alike instead of whichever happened to run last.

/** `values` rotated left by `by`. */
function rotate<T>(values: readonly T[], by: number): T[] {
  const shift = by % values.length;
  return [...values.slice(shift), ...values.slice(0, shift)];
}

/** Runs `measure` for each variant in each of `rounds` rounds; results per variant, indexed by round. */
export async function interleaved<V, R>(rounds: number, variants: readonly V[], measure: (variant: V) => Promise<R>): Promise<Map<V, R[]>> {
  const results = new Map<V, R[]>(variants.map((v) => [v, []]));
  for (let round = 0; round < rounds; round++) {
    for (const variant of rotate(variants, round)) results.get(variant)!.push(await measure(variant));
  }
  return results;
}
