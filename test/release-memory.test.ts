// The memory release after a large peak of request bytes (src/streams/release-memory.ts):
// when it collects and trims, that it waits for buffers freed late, and that it is bounded.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LARGE_PEAK, MemoryReleaser, releaseAfterStartup, type ReleaseEffects } from '../src/streams/release-memory.js';

/** Effects that record what happened; scheduled work runs when the test says so. */
function fakeProcess(bufferBytes: () => number) {
  const log: string[] = [];
  const queue: { f: () => void; ms: number }[] = [];
  const effects: ReleaseEffects = {
    collect: () => void log.push('collect'),
    reduce: (done) => {
      log.push('reduce');
      done();
    },
    trim: () => void log.push('trim'),
    bufferBytes,
    later: (f, ms) => void queue.push({ f, ms }),
  };
  /** Runs scheduled work (bounded); returns the pauses it waited. */
  const runAll = (limit = 50): number[] => {
    const waited: number[] = [];
    for (let i = 0; i < limit && queue.length > 0; i++) {
      const next = queue.shift()!;
      waited.push(next.ms);
      next.f();
    }
    return waited;
  };
  return { effects, log, queue, runAll };
}

test('a drain after a small peak leaves memory to V8', () => {
  const p = fakeProcess(() => 0);
  const r = new MemoryReleaser(p.effects);
  r.update(LARGE_PEAK - 1);
  r.update(0);
  assert.equal(p.queue.length, 0);
});

test('a drain after a large peak collects, then trims after a pause', () => {
  const p = fakeProcess(() => 0);
  const r = new MemoryReleaser(p.effects);
  r.update(LARGE_PEAK);
  r.update(LARGE_PEAK / 2);
  assert.equal(p.queue.length, 0, 'nothing while bytes are in flight');
  r.update(0);
  const waited = p.runAll();
  assert.deepEqual(p.log, ['collect', 'trim']);
  assert.equal(waited[0], 0, 'the collection runs after the current event');
  assert.ok(waited[1]! > 0, 'the trim waits for the buffers freed after the collection');
  // done: the next drain without a new large peak does nothing
  r.update(1000);
  r.update(0);
  assert.equal(p.queue.length, 0);
});

test('buffers still held after a round: more rounds with growing pauses, until they are freed', () => {
  let held = 800 << 20;
  const p = fakeProcess(() => held);
  const r = new MemoryReleaser(p.effects);
  r.update(held);
  r.update(0);
  // freed by the time of the third trim
  p.effects.trim = () => {
    p.log.push('trim');
    if (p.log.filter((e) => e === 'trim').length === 3) held = 1 << 20;
  };
  const waited = p.runAll();
  assert.deepEqual(p.log, ['collect', 'trim', 'collect', 'trim', 'collect', 'trim']);
  const pauses = waited.filter((ms) => ms > 0);
  assert.ok(pauses[0]! < pauses[1]! && pauses[1]! < pauses[2]!, `growing pauses: ${pauses.join(' ')}`);
});

test('buffers that stay: the release gives up after a bounded number of rounds, within 5 s', () => {
  const p = fakeProcess(() => 800 << 20);
  const r = new MemoryReleaser(p.effects);
  r.update(800 << 20);
  r.update(0);
  const waited = p.runAll();
  const collections = p.log.filter((e) => e === 'collect').length;
  assert.ok(collections >= 3 && collections <= 8, `${collections} collections`);
  assert.ok(waited.reduce((a, b) => a + b, 0) < 5000, `${waited.join('+')} ms`);
  // given up: further drains without a new large peak do nothing
  r.update(1000);
  r.update(0);
  assert.equal(p.queue.length, 0);
});

test('requests in flight again stop the rounds; the next drain resumes them', () => {
  let held = 800 << 20;
  const p = fakeProcess(() => held);
  const r = new MemoryReleaser(p.effects);
  r.update(800 << 20);
  r.update(0);
  p.runAll(2); // one collection and its trim: buffers still held, the next collection is due
  r.update(2048); // a new request arrives before it
  p.runAll();
  assert.deepEqual(p.log, ['collect', 'trim'], 'no collection while a request is in flight');
  held = 0;
  r.update(0);
  p.runAll();
  assert.deepEqual(p.log, ['collect', 'trim', 'collect', 'trim']);
});

test('after startup: a moment later one memory reduction, then a trim after a pause; no plain collection', () => {
  const p = fakeProcess(() => 0);
  releaseAfterStartup(p.effects);
  assert.deepEqual(p.log, [], 'not during startup itself');
  const waited = p.runAll();
  assert.deepEqual(p.log, ['reduce', 'trim']);
  assert.ok(waited[0]! > 0 && waited[1]! > 0, waited.join(' '));
});
