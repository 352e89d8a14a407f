// `--workers N`: N worker processes accepting on the listeners the primary
// bound, each with its own Lua state; SIGHUP reaches every worker, a dead
// worker is replaced, SIGTERM drains them all; `--workers 1` is the plain daemon.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { childrenOf } from './helpers/exec-children.js';
import { exchange, qmqpRequest, send } from './helpers/qmqp.js';

const CONFIG = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  if m.recipients[1] == 'slow@example.org' then
    print('handling slow mail')
    io.stdout:flush()
    sleep(1)
  end
  return m:discard()
end)
function reload() print('reloaded') io.stdout:flush() end
`;

const MAIL = qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@example.org', ['b@example.org']);
const liveChildren = (daemon: RunningDaemon): number[] =>
  childrenOf(daemon.child.pid!)
    .filter((c) => c.state !== 'Z')
    .map((c) => c.pid);

/** The daemon with `--workers N`, ready once every worker is. */
function daemonWith(workers: string): Promise<RunningDaemon> {
  const dir = tempDir();
  return startDaemon({
    config: CONFIG,
    dir,
    args: ['--config', join(dir, 'config.lua'), '--workers', workers],
    readyPath: 'qrelay.sock',
    ...(workers === '1' ? {} : { ready: (_out: string, err: string) => err.includes(`${workers} workers ready`) }),
  });
}

describe('--workers', () => {
  it('serves mail from two worker processes, each with its own Lua state', async () => {
    const daemon = await daemonWith('2');
    try {
      assert.equal(liveChildren(daemon).length, 2);
      const answers = await Promise.all(Array.from({ length: 20 }, () => send(join(daemon.dir, 'qrelay.sock'), MAIL)));
      assert.deepEqual(answers, Array(20).fill('10:Kdiscarded,'));
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('runs reload() in every worker on SIGHUP', async () => {
    const daemon = await daemonWith('2');
    try {
      daemon.child.kill('SIGHUP');
      await waitFor(() => daemon.stdout().split('reloaded').length - 1 === 2, 10_000, 'two reloads');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('replaces a worker that dies, and logs it', async () => {
    const daemon = await daemonWith('2');
    try {
      const [victim] = liveChildren(daemon);
      process.kill(victim!, 'SIGKILL');
      await daemon.waitForStderr(new RegExp(`worker pid=${victim} exited \\(SIGKILL\\); starting a new one`));
      await waitFor(() => liveChildren(daemon).length === 2 && !liveChildren(daemon).includes(victim!), 10_000, 'a new worker');
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('drains every worker on SIGTERM: a mail in flight is answered, then all exit 0', async () => {
    const daemon = await daemonWith('2');
    const workers = liveChildren(daemon);
    try {
      const slow = exchange(join(daemon.dir, 'qrelay.sock'), qmqpRequest('x', 'a@example.org', ['slow@example.org']));
      await waitFor(() => daemon.stdout().includes('handling slow mail'), 10_000, 'the slow mail in a worker');
      const status = daemon.stop();
      assert.equal((await slow).response.toString(), '10:Kdiscarded,');
      assert.equal(await status, 0);
      for (const pid of workers) assert.throws(() => process.kill(pid, 0), 'worker gone');
    } finally {
      removeDir(daemon.dir);
    }
  });

  it('with 1 (the default) runs no worker processes', async () => {
    const daemon = await daemonWith('1');
    try {
      assert.deepEqual(liveChildren(daemon), []);
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('refuses a count that is not a positive number or auto', () => {
    for (const value of ['0', '-1', 'two', '']) {
      const r = spawnSync(process.execPath, [MAIN, '--workers', value], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, value);
      assert.match(r.stderr, /^qrelay: Option '--workers'[^]*\nUsage: qrelay \[--config PATH\] \[--workers N\|auto\]\n$/);
    }
  });
});
