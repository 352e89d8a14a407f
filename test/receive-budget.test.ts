// The global budget of request bytes in flight: beyond it the largest
// unfinished requests stop being read until others finish; memory per
// connection grows with the bytes received, not with the announced length.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ReceiveBudget, defaultReceiveBudget, type Pausable } from '../src/streams/receive-budget.js';
import { removeDir, startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { exchange, netstring, qmqpBody, qmqpRequest, send } from './helpers/qmqp.js';

class FakeSocket implements Pausable {
  paused = false;
  pause(): void {
    this.paused = true;
  }
  resume(): void {
    this.paused = false;
  }
}

describe('receive budget', () => {
  it('defaults to a quarter of the RAM, at most 1 GiB', () => {
    assert.equal(defaultReceiveBudget(24 * 2 ** 30), 2 ** 30);
    assert.equal(defaultReceiveBudget(2 * 2 ** 30), 2 ** 29);
  });

  it('pauses the largest unfinished request once over the budget, and resumes it when others finish', () => {
    const budget = new ReceiveBudget(100);
    const [a, b, c] = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    const [sa, sb, sc] = [budget.open(a), budget.open(b), budget.open(c)];
    sa.add(60);
    sb.add(30);
    assert.ok(!a.paused && !b.paused);
    sc.add(20); // 110 > 100: the largest (a) is held
    assert.ok(a.paused && sa.held);
    assert.ok(!b.paused && !c.paused);
    sb.add(10); // 120: b (40) is now the largest unheld
    assert.ok(b.paused);
    sc.add(10); // c is the last one reading: never held
    assert.ok(!c.paused);
    sc.doneReading();
    sc.release(); // 100: within the budget again
    assert.ok(!a.paused && !b.paused);
    assert.equal(budget.bytesInFlight, 100);
    sa.release();
    sb.release();
    assert.equal(budget.bytesInFlight, 0);
  });

  it('counts a finished request until its connection ends', () => {
    const budget = new ReceiveBudget(50);
    const [a, b] = [new FakeSocket(), new FakeSocket()];
    const sa = budget.open(a);
    const sb = budget.open(b);
    sa.add(40);
    sa.doneReading();
    sb.add(20);
    assert.equal(budget.bytesInFlight, 60);
    assert.ok(!b.paused, 'the only request still reading is never held');
    sa.release();
    sb.release();
    assert.equal(budget.bytesInFlight, 0);
  });

  it('lets the request furthest along read on when all others are held and the one reading finishes', () => {
    const budget = new ReceiveBudget(10);
    const [a, b, c] = [new FakeSocket(), new FakeSocket(), new FakeSocket()];
    const [sa, sb, sc] = [budget.open(a), budget.open(b), budget.open(c)];
    sa.add(30);
    sb.add(20);
    sc.add(5); // a and b held, c reads
    assert.ok(a.paused && b.paused && !c.paused);
    sc.doneReading(); // still over the budget: a (furthest along) reads on
    assert.ok(!a.paused && b.paused);
    sa.doneReading();
    assert.ok(!b.paused);
    for (const share of [sa, sb, sc]) share.release();
    assert.equal(budget.bytesInFlight, 0);
  });
});

describe('receive budget in the daemon', () => {
  let daemon: RunningDaemon;
  let socket: string;
  before(async () => {
    daemon = await startDaemon({
      config: `max_bytes_in_flight = 65536
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)
`,
      readyPath: 'qrelay.sock',
    });
    socket = join(daemon.dir, 'qrelay.sock');
  });
  after(async () => {
    await daemon.stop();
    removeDir(daemon.dir);
  });

  it('serves every one of several concurrent 1 MiB mails far over the budget', async () => {
    const request = qmqpRequest(Buffer.alloc(1 << 20, 'x'), 'a@example.org', ['b@example.org']);
    const answers = await Promise.all(Array.from({ length: 6 }, () => send(socket, request)));
    assert.deepEqual(answers, Array(6).fill('10:Kdiscarded,'));
  });

  it('holds only what a client sent of an announced 16 MiB, and still answers others', async () => {
    // 20 connections announce 16 MiB each and send 1 KiB: a reservation per
    // announced length would be 320 MiB; the daemon keeps serving
    const announce = Buffer.concat([Buffer.from(`${16 << 20}:`), Buffer.alloc(1024, 'y')]);
    const held = await Promise.all(
      Array.from(
        { length: 20 },
        () =>
          new Promise<ReturnType<typeof connect>>((resolve) => {
            const c = connect(socket, () => c.write(announce, () => resolve(c)));
            c.on('error', () => {});
          }),
      ),
    );
    try {
      const answer = await send(socket, netstring(qmqpBody('small', 'a@example.org', ['b@example.org'])));
      assert.equal(answer, '10:Kdiscarded,');
      const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${daemon.child.pid}/status`, 'latin1'))?.[1]);
      assert.ok(rssKiB < 200 * 1024, `RSS ${rssKiB} KiB`);
    } finally {
      for (const c of held) c.destroy();
    }
  });

  it('does not time out a connection the budget holds back', async () => {
    // one slow 1 MiB sender (pauses between chunks) and a fast one that
    // pushes the total over the budget: both are answered
    const big = qmqpRequest(Buffer.alloc(1 << 20, 'z'), 'a@example.org', ['b@example.org']);
    const pieces = Array.from({ length: 8 }, (_, i) => big.subarray((i * big.length) >> 3, ((i + 1) * big.length) >> 3));
    const [slow, fast] = await Promise.all([exchange(socket, pieces, { pauseMs: 50 }), send(socket, big)]);
    assert.equal(slow.response.toString(), '10:Kdiscarded,');
    assert.equal(fast, '10:Kdiscarded,');
  });
});
