// keepTimerList: one unreferenced interval per duration keeps Node's list
// of timers of that duration alive; it never holds the process open, and
// timers of that duration still fire on time.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { keepTimerList } from '../src/streams/timer-lists.js';

describe('keepTimerList', () => {
  it('takes the durations Node keeps lists for, and no others', () => {
    assert.equal(keepTimerList(5_000), true);
    assert.equal(keepTimerList(5_000.7), true, 'truncated, as Node does');
    assert.equal(keepTimerList(2 ** 31 - 1), true);
    // Node would run these every millisecond
    assert.equal(keepTimerList(0), false);
    assert.equal(keepTimerList(0.5), false);
    assert.equal(keepTimerList(2 ** 31), false);
    assert.equal(keepTimerList(Infinity), false);
    assert.equal(keepTimerList(Number.NaN), false);
  });

  it('lets timers of the kept duration fire on time, one after another', async () => {
    keepTimerList(60);
    for (let i = 0; i < 3; i++) {
      const started = Date.now();
      await new Promise((resolve) => setTimeout(resolve, 60));
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 59, `fired after ${elapsed} ms`);
    }
  });

  it('does not keep the process alive', () => {
    const code = `
      const { keepTimerList } = await import(${JSON.stringify(new URL('../src/streams/timer-lists.ts', import.meta.url).href)});
      keepTimerList(600000);
      console.log('done');
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'done');
  });
});
