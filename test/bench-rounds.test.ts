// The bench's round order (bench/lib/rounds.ts): every variant once per
// round in a changing order, and big mails only after the small ones.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ascending, interleaved, roundOrder } from '../bench/lib/rounds.js';

describe('bench rounds', () => {
  it('measures every variant once per round, in a changing order', async () => {
    const seen: string[] = [];
    const results = await interleaved(4, ['a', 'b', 'c'], async (v) => {
      seen.push(v);
      return seen.length;
    });
    for (let round = 0; round < 4; round++) assert.deepEqual([...seen.slice(round * 3, round * 3 + 3)].sort(), ['a', 'b', 'c']);
    assert.notDeepEqual(roundOrder(['a', 'b', 'c'], 0, 4), roundOrder(['a', 'b', 'c'], 1, 4));
    assert.deepEqual(
      [...results.values()].map((r) => r.length),
      [4, 4, 4],
    );
  });

  it('groups the variants by size, smallest first, each group in the given order', () => {
    const cells = [
      { name: 'relay 2 KB', bytes: 2048 },
      { name: 'relay 16 MiB', bytes: 16 << 20 },
      { name: 'relay 1 MiB', bytes: 1 << 20 },
      { name: 'discard 2 KB', bytes: 2048 },
      { name: 'floor 16 MiB', bytes: 16 << 20 },
    ];
    const groups = ascending(cells, (c) => c.bytes).map((g) => g.map((c) => c.name));
    assert.deepEqual(groups, [['relay 2 KB', 'discard 2 KB'], ['relay 1 MiB'], ['relay 16 MiB', 'floor 16 MiB']]);
  });

  it('a small round never follows a big one when each group runs its rounds in turn', async () => {
    const sizes = [16, 2, 1, 2, 16, 1];
    const order: number[] = [];
    for (const group of ascending(sizes, (s) => s)) await interleaved(3, group, async (s) => void order.push(s));
    for (let i = 1; i < order.length; i++) assert.ok(order[i]! >= order[i - 1]!, `${order.join(' ')}`);
  });
});
