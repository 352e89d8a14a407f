// Children of exec/exec_raw over their lifetime (docs/actions.md): the
// timeout option, termination when the mail is abandoned, SIGKILL after the
// grace period, shutdown, and no zombies.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { firstValueFrom, mergeMap } from 'rxjs';
import { childProcess, terminateAllChildren, type ExitStatus } from '../src/streams/child-process.js';
import { DEFAULT_TIMEOUTS } from '../src/timeouts.js';
import { removeDir, startDaemon, tempDir, waitFor } from './helpers/daemon.js';
import { casesConfig, FIXTURES, isAlive, isLiveChild, readPidFile, sendCase, suiteDaemon } from './helpers/exec-children.js';
import { qmqpRequest } from './helpers/qmqp.js';

const KILL_GRACE_MS = 300;
const WAITER = join(FIXTURES, 'wait-with-pid.sh');

/** Cases named `<action>-<what>`, each running wait-with-pid.sh with the pid file DIR/<case>.pid. */
function waiterCase(action: 'exec' | 'exec_raw', name: string, extra: string): string {
  return `return m:${action}(${JSON.stringify(WAITER)}, dir .. '/${action}-${name}.pid'${extra})`;
}

const cases: Record<string, string> = { discard: 'return m:discard()' };
for (const action of ['exec', 'exec_raw'] as const) {
  cases[`${action}-timeout`] = waiterCase(action, 'timeout', ', {timeout = 0.5}');
  cases[`${action}-stubborn`] = waiterCase(action, 'stubborn', ", 'ignore-term', {timeout = 0.5}");
  for (const name of ['disconnect', 'half-close', 'shutdown']) cases[`${action}-${name}`] = waiterCase(action, name, '');
}

describe('exec and exec_raw children over their lifetime', () => {
  const suite = suiteDaemon({ config: casesConfig(cases), env: { QRELAY_TEST_KILL_GRACE_MS: String(KILL_GRACE_MS) } });
  const pidFile = (name: string): string => join(suite().dir, `${name}.pid`);
  const socketPath = (): string => join(suite().dir, 'qrelay.sock');


  for (const action of ['exec', 'exec_raw'] as const) {
    it(`${action}: the timeout option answers Ztimeout and terminates the child`, async () => {
      const started = Date.now();
      assert.equal(await sendCase(suite(), `${action}-timeout`), '8:Ztimeout,');
      assert.ok(Date.now() - started >= 450, 'not before the timeout');
      const pid = await readPidFile(pidFile(`${action}-timeout`));
      await waitFor(() => !isLiveChild(pid, suite().child.pid!), 2_000, `child ${pid} terminated`);
      await suite().waitForStderr(/\] timeout\n/);
      assert.doesNotMatch(suite().stderr(), new RegExp(`\\[${action}\\] died from signal 15`), 'SIGTERM deaths are not logged');
    });

    it(`${action}: a child ignoring SIGTERM is SIGKILLed after the grace period`, async () => {
      assert.equal(await sendCase(suite(), `${action}-stubborn`), '8:Ztimeout,');
      const answered = Date.now();
      const pid = await readPidFile(pidFile(`${action}-stubborn`));
      await waitFor(() => !isLiveChild(pid, suite().child.pid!), 5_000, `child ${pid} killed`);
      const elapsed = Date.now() - answered;
      assert.ok(elapsed >= KILL_GRACE_MS - 50, `SIGKILL waited for the grace period (${elapsed} ms)`);
      await waitFor(() => suite().stderr().includes(`[${action}] died from signal 9\n`), 2_000, 'log line');
    });

    for (const leaving of ['disconnect', 'half-close'] as const) {
      it(`${action}: a client ${leaving} terminates the child without an answer`, async () => {
        const client = connect({ path: socketPath(), allowHalfOpen: true });
        client.on('error', () => {});
        const received: Buffer[] = [];
        client.on('data', (d: Buffer) => received.push(d));
        const closed = new Promise((resolve) => client.on('close', resolve));
        client.write(qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'sender@example.org', [`${action}-${leaving}@example.com`]));
        const pid = await readPidFile(pidFile(`${action}-${leaving}`));
        assert.ok(isLiveChild(pid, suite().child.pid!));
        if (leaving === 'disconnect') client.destroy();
        else client.end();
        await waitFor(() => !isLiveChild(pid, suite().child.pid!), 3_000, `child ${pid} terminated`);
        client.destroy();
        await closed;
        assert.equal(Buffer.concat(received).length, 0);
      });
    }
  }

  it('stays responsive while children run', async () => {
    const running = [sendCase(suite(), 'exec-timeout'), sendCase(suite(), 'exec_raw-timeout')];
    await readPidFile(pidFile('exec_raw-timeout'));
    const started = Date.now();
    assert.equal(await sendCase(suite(), 'discard'), '10:Kdiscarded,');
    assert.ok(Date.now() - started < 400, 'answered while the children still ran');
    assert.deepEqual(await Promise.all(running), ['8:Ztimeout,', '8:Ztimeout,']);
  });
});

describe('daemon shutdown', () => {
  it('terminates running children', async () => {
    const daemon = await startDaemon({ config: casesConfig(cases) });
    try {
      const pending = sendCase(daemon, 'exec_raw-shutdown');
      const pid = await readPidFile(join(daemon.dir, 'exec_raw-shutdown.pid'));
      await daemon.stop();
      await pending;
      await waitFor(() => !isAlive(pid), 3_000, `child ${pid} terminated`);
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });
});

describe('a child that failed to start', () => {
  it('is not signalled when abandoned before the failure is reported', async () => {
    // Unsubscribing at once: a kill here would go to pid 0, this test's own process group.
    const caught = new Promise((resolve) => process.once('SIGTERM', resolve));
    childProcess({ argv: ['/nonexistent/program'], env: undefined, domain: 'exec', stderr: 'daemon', killGraceMs: DEFAULT_TIMEOUTS.killGraceMs })
      .subscribe({ error: () => {} })
      .unsubscribe();
    const outcome = await Promise.race([caught.then(() => 'signalled'), new Promise((resolve) => setTimeout(resolve, 200, 'quiet'))]);
    assert.equal(outcome, 'quiet');
  });
});

describe('terminateAllChildren', () => {
  it('kills children at once, even those ignoring SIGTERM', async () => {
    const dir = tempDir();
    try {
      // subscribed until the exit status arrives: unsubscribing earlier would SIGTERM the child
      const statuses = [0, 1].map((i) =>
        firstValueFrom(
          childProcess({ argv: [WAITER, join(dir, `${i}.pid`), 'ignore-term'], env: undefined, domain: 'exec', stderr: 'daemon', killGraceMs: DEFAULT_TIMEOUTS.killGraceMs }).pipe(
            mergeMap((child) => child.exit$),
          ),
        ),
      );
      for (const i of [0, 1]) await readPidFile(join(dir, `${i}.pid`));
      const started = Date.now();
      terminateAllChildren();
      const expected: ExitStatus = { kind: 'signaled', signal: 9 };
      assert.deepEqual(await Promise.all(statuses), [expected, expected]);
      assert.ok(Date.now() - started < 2_000, 'no grace period at shutdown');
    } finally {
      removeDir(dir);
    }
  });
});
