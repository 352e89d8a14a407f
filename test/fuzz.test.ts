// A short fuzz run (npm run fuzz runs long ones): structured-but-wrong QMQP
// over real sockets gets exactly the documented answers (docs/protocol.md), and after
// every batch the daemon serves a good mail and is back at its baseline of
// descriptors, children and memory.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runFuzz } from './fuzz/run.js';

describe('fuzz', () => {
  it('answers 400 malformed, truncated, split, trickled, half-closed and abandoned requests as documented', async () => {
    // batches of 100 so that the baseline is checked four times
    const report = await runFuzz({ count: 400, seed: 20261127, batchSize: 100, concurrency: 50 });
    assert.deepEqual(report.failures, []);
    assert.equal(report.cases, 400);
  });
});
