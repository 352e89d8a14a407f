// The POSIX timers of src/native/stop-timers.ts, each in a child process
// of its own (stopping code or killing the process is what they do).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { ROOT } from './helpers/daemon.js';

/** Runs `code` (an ES module importing the timers as `t`) in a fresh node with the daemon's async-hook option. */
function run(code: string): ReturnType<typeof spawnSync> {
  const source = `import * as t from ${JSON.stringify(`${ROOT}/src/native/stop-timers.ts`)};\n${code}`;
  return spawnSync(process.execPath, ['--no-force-async-hooks-checks', '--import', 'tsx', '--input-type=module', '-e', source], { cwd: ROOT, encoding: 'latin1', timeout: 20_000 });
}

describe('stop timers', () => {
  it('a terminating StopTimer stops a loop that never ends, inside a timer callback; the event loop goes on and expired() tells', () => {
    const result = run(`
      const timer = t.StopTimer.terminating();
      setTimeout(() => {
        timer.arm(100);
        for (;;) {}
      }, 10);
      setTimeout(() => {
        console.log('expired=' + timer.expired());
        timer.close();
      }, 400);
    `);
    assert.equal(result.status, 0, String(result.stderr));
    assert.equal(result.stdout, 'expired=true\n');
  });

  it('a terminating StopTimer re-armed before it expires stops nothing', () => {
    const result = run(`
      const timer = t.StopTimer.terminating();
      timer.arm(200);
      const beat = setInterval(() => timer.arm(200), 20);
      setTimeout(() => {
        const started = Date.now();
        while (Date.now() - started < 100) {}
        console.log('expired=' + timer.expired());
        clearInterval(beat);
        timer.close();
      }, 300);
    `);
    assert.equal(result.status, 0, String(result.stderr));
    assert.equal(result.stdout, 'expired=false\n');
  });

  it('a killing StopTimer re-armed before it expires kills nothing', () => {
    const result = run(`
      const timer = t.StopTimer.killing();
      timer.arm(200);
      const beat = setInterval(() => timer.arm(200), 20);
      setTimeout(() => {
        console.log('expired=' + timer.expired());
        clearInterval(beat);
        timer.close();
      }, 400);
    `);
    assert.equal(result.status, 0, String(result.stderr));
    assert.equal(result.stdout, 'expired=false\n');
  });

  it('killAfter has the kernel kill a process that never returns', () => {
    const result = run(`
      console.log('armed=' + t.killAfter(100));
      for (;;) {}
    `);
    assert.equal(result.signal, 'SIGKILL');
    assert.equal(result.stdout, 'armed=true\n');
  });
});
