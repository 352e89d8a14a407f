// Code that never returns to the event loop and that the run-time limit
// cannot stop (a __gc metamethod: Lua runs finalizers with hooks off; a
// library function such as string.find: no VM instruction to hook) is
// stopped from outside after twice the limit; its mail is answered
// `Zscript failed`, the Lua state is abandoned, mails past the policy
// finish, and the process exits 70 for a fresh one to take over.  Code
// blocked in a system call is beyond the stop: the kernel kills the process.  The
// daemon runs by its #! line, as the `qrelay` command does (its node
// options let the process go on after the stop).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { downstreamServer, exchange, qmqpRequest, send } from './helpers/qmqp.js';

const CONFIG = `local dir = os.getenv('TEST_DIR')
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local to = m.recipients[1]
  if to == 'gc@example.org' then
    setmetatable({}, { __gc = function() while true do end end })
    collectgarbage()
  elseif to == 'pattern@example.org' then
    sleep(0.05)
    string.find(string.rep('a', 5000), '.-.-.-.-.-.-.-b')
  elseif to == 'fifo@example.org' then
    io.open(dir .. '/fifo'):read('a')
  elseif to == 'slow@example.org' then
    io.open(dir .. '/slow-started', 'w'):close()
    sleep(60)
  elseif to == 'relay@example.org' then
    return m:connect(dir .. '/downstream.sock')
  end
  return m:discard()
end)
`;

/**
 * Run-time limit 1 s: code is stopped after 2 s, a process that does not
 * come back is killed after 4 s (shorter limits risk stops of a daemon
 * that a loaded machine merely starves).
 */
const ENV = { QRELAY_LUA_TIME_LIMIT_MS: '1000', QRELAY_SHUTDOWN_GRACE_MS: '10000' };
const STUCK_LINE = /stuck: Lua code held the process for \d+\.\d s and was stopped; the Lua state is abandoned, no new connections, exiting with status 70 once the mails in flight are done \(pid=\d+\)/;

function mail(to: string): Buffer {
  return qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@example.org', [to]);
}

function daemonIn(dir: string, args: readonly string[] = []): Promise<RunningDaemon> {
  return startDaemon({
    config: CONFIG,
    dir,
    env: ENV,
    command: [MAIN],
    args: ['--config', join(dir, 'config.lua'), ...args],
    readyPath: 'qrelay.sock',
    ...(args.includes('--workers') ? { ready: (_out: string, err: string) => err.includes('2 workers ready') } : {}),
  });
}

describe('code the run-time limit cannot stop', () => {
  it('a __gc metamethod that never returns: its mail and one waiting in Lua (sleep(60)) get Zscript failed at once, a relay under way is answered, then the process exits 70', async () => {
    const dir = tempDir();
    let held: Socket | undefined;
    const downstream = await downstreamServer(join(dir, 'downstream.sock'), (_request, socket) => {
      held = socket;
      return undefined;
    });
    const daemon = await daemonIn(dir);
    try {
      const sock = join(dir, 'qrelay.sock');
      assert.equal(await send(sock, mail('ok@example.org')), '10:Kdiscarded,');
      const relayed = send(sock, mail('relay@example.org'));
      await waitFor(() => held !== undefined, 10_000, 'the relay to reach the downstream server');
      const waiting = send(sock, mail('slow@example.org'));
      await daemon.waitForStderr(/from=a@example.org nrcpt=1 to=ok@example.org/);
      await waitFor(() => existsSync(join(dir, 'slow-started')), 10_000, 'the slow handler to start');
      assert.equal(await send(sock, mail('gc@example.org')), '14:Zscript failed,');
      await daemon.waitForStderr(STUCK_LINE);
      assert.equal(await waiting, '14:Zscript failed,');
      assert.match(daemon.stderr(), /\[pid=\d+ uid=\d+ mail=\w+\] Lua code was stopped after it held the process for \d+\.\d s \(a __gc metamethod or a library function such as string\.find, which the run-time limit cannot interrupt\)\n/);
      assert.match(daemon.stderr(), /to=gc@example\.org size=\d+ action=script-failed target=- answer=Z text="script failed"/);
      // the mail past the policy is still relayed, and answered
      held!.end('6:Kthere,');
      assert.equal(await relayed, '6:Kthere,');
      assert.equal(await daemon.exited, 70);
    } finally {
      if (daemon.child.exitCode === null) await daemon.stop();
      await downstream.close();
      removeDir(dir);
    }
  });

  it('string.find with a pattern that backtracks without end, after a sleep (stopped inside a timer callback): Zscript failed, exit 70', async () => {
    const dir = tempDir();
    const daemon = await daemonIn(dir);
    try {
      assert.equal(await send(join(dir, 'qrelay.sock'), mail('pattern@example.org')), '14:Zscript failed,');
      await daemon.waitForStderr(STUCK_LINE);
      assert.equal(await daemon.exited, 70);
    } finally {
      if (daemon.child.exitCode === null) await daemon.stop();
      removeDir(dir);
    }
  });

  it('a handler blocked in a system call (opening a FIFO nobody writes), which no stop reaches: the kernel kills the process after twice the limit', async () => {
    const dir = tempDir();
    assert.equal(spawnSync('mkfifo', [join(dir, 'fifo')]).status, 0);
    const daemon = await daemonIn(dir);
    try {
      const answer = await exchange(join(dir, 'qrelay.sock'), mail('fifo@example.org'));
      assert.equal(answer.response.length, 0);
      await daemon.exited;
      assert.equal(daemon.child.signalCode, 'SIGKILL');
    } finally {
      if (daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop();
      removeDir(dir);
    }
  });

  it('with --workers 2, the worker that was stopped is replaced and mail goes on', async () => {
    const dir = tempDir();
    const daemon = await daemonIn(dir, ['--workers', '2']);
    try {
      const sock = join(dir, 'qrelay.sock');
      assert.equal(await send(sock, mail('gc@example.org')), '14:Zscript failed,');
      await daemon.waitForStderr(/worker pid=\d+ exited \(status 70\); starting a new one/);
      await waitFor(() => daemon.stderr().split('listening: ').length - 1 === 3, 10_000, 'the new worker listening');
      const answers = await Promise.all(Array.from({ length: 6 }, () => send(sock, mail('ok@example.org'))));
      assert.deepEqual(answers, Array(6).fill('10:Kdiscarded,'));
      assert.equal(await daemon.stop(), 0);
    } finally {
      if (daemon.child.exitCode === null) await daemon.stop();
      removeDir(dir);
    }
  });

  for (const workers of [[], ['--workers', '2']]) {
    it(`a config that holds the process while it loads${workers.length > 0 ? ' (in the primary of --workers 2)' : ''}: a startup error naming the config, exit 1`, async () => {
      const dir = tempDir();
      const daemon = await startDaemon({
        config: `setmetatable({}, { __gc = function() while true do end end })\ncollectgarbage()\nqmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)\n`,
        dir,
        env: ENV,
        command: [MAIN],
        args: ['--config', join(dir, 'config.lua'), ...workers],
        noWait: true,
      });
      try {
        assert.equal(await daemon.exited, 1);
        assert.match(daemon.stderr(), /config\.lua: Lua code held the process for \d+\.\d s while the config was loaded and was stopped \(a __gc metamethod or a library function such as string\.find, which the run-time limit cannot interrupt\)\n/);
      } finally {
        if (daemon.child.exitCode === null && daemon.child.signalCode === null) await daemon.stop();
        removeDir(dir);
      }
    });
  }
});
