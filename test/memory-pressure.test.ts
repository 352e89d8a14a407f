// V8's memory reduction through the native module (src/native/memory-pressure.ts):
// on this node binary it is available, and it shrinks a young generation
// that grew under load, which a plain full collection does not.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { getHeapSpaceStatistics } from 'node:v8';
import { requestMemoryReduction } from '../src/native/memory-pressure.js';

function youngGenerationBytes(): number {
  return getHeapSpaceStatistics().find((s) => s.space_name === 'new_space')!.space_size;
}

/** Short-lived objects that survive a few scavenges: V8 grows the young generation. */
function growYoungGeneration(): void {
  let keep: unknown[] = [];
  for (let round = 0; round < 200; round++) {
    const batch: unknown[] = [];
    for (let i = 0; i < 20_000; i++) batch.push({ round, i, text: `x${i}` });
    keep.push(batch);
    if (keep.length > 8) keep = keep.slice(4);
  }
}

test('a memory reduction shrinks the grown young generation and calls back', async () => {
  growYoungGeneration();
  const grown = youngGenerationBytes();
  assert.ok(grown >= 4 << 20, `young generation grew to ${grown} bytes`);
  await new Promise<void>((resolve) => assert.equal(requestMemoryReduction(resolve), true));
  // the collection runs as a task of the event loop
  await new Promise((resolve) => setTimeout(resolve, 100));
  const after = youngGenerationBytes();
  assert.ok(after < grown / 2, `young generation ${grown} → ${after} bytes`);
});
