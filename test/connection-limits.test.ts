// What local users can hold: the global cap on connections in flight
// (at the cap qrelay stops accepting; clients wait in the listen backlog
// and are served when a connection ends), the per-uid cap (an immediate
// answer), and a downstream whose listen backlog is full (docs/actions.md, connect).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeFd, connectSocket, listenUnix } from '../src/native/linux.js';
import { removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

const HANDLER = `
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  local to = m.recipients[1]
  if to:match('^hold@') then print('holding') sleep(60) end
  if to:match('^full@') then return m:connect(os.getenv('FULL_PATH')) end
  if to:match('^fullabstract@') then return m:connect('@' .. os.getenv('FULL_NAME')) end
  return m:discard()
end)`;

const mail = (to: string): Buffer => qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@b.c', [`${to}@x.y`]);

/** A client that sent `request` and collects whatever comes back. */
interface Pending {
  readonly socket: Socket;
  readonly answer: Promise<string>;
}

function sendAndWait(path: string, request: Buffer): Pending {
  const socket = connect({ path, allowHalfOpen: true });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  socket.on('error', () => {});
  const answer = new Promise<string>((resolve) => {
    const done = (): void => {
      resolve(Buffer.concat(chunks).toString('latin1'));
      socket.destroy();
    };
    socket.on('end', done);
    socket.on('close', done);
  });
  socket.write(request);
  return { socket, answer };
}

function descriptorCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

async function withDaemon(config: string, test: (daemon: RunningDaemon, sock: string) => Promise<void>, env: NodeJS.ProcessEnv = {}): Promise<void> {
  const daemon = await startDaemon({ config, env });
  try {
    await test(daemon, join(daemon.dir, 'qrelay.sock'));
  } finally {
    assert.equal(await daemon.stop(), 0);
    removeDir(daemon.dir);
  }
}

describe('the global connection cap', () => {
  it('stops accepting at the cap, so clients wait in the backlog and are all served once connections end', async () => {
    await withDaemon(`max_connections = 4\nmax_connections_per_uid = 0\n${HANDLER}`, async (daemon, sock) => {
      const held = Array.from({ length: 4 }, () => sendAndWait(sock, mail('hold')));
      await daemon.waitForStderr(/^Connection limit of 4 reached: not accepting until a connection ends$/m);
      const pid = daemon.child.pid!;
      const descriptors = descriptorCount(pid);
      // these connect (the kernel queues them) but are not accepted
      const waiting = Array.from({ length: 20 }, () => sendAndWait(sock, mail('ok')));
      await Promise.all(waiting.map((w) => new Promise((r) => (w.socket.connecting ? w.socket.once('connect', r) : r(undefined)))));
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(descriptorCount(pid), descriptors, 'no connection accepted beyond the cap');
      // one held connection ends: every waiting client is served, none is reset
      held[0]!.socket.destroy();
      const answers = await Promise.all(waiting.map((w) => w.answer));
      assert.deepEqual(answers, Array(20).fill('10:Kdiscarded,'));
      // logged once, not once per connection
      assert.equal(daemon.stderr().match(/Connection limit of 4 reached/g)?.length, 1);
      for (const h of held) h.socket.destroy();
      assert.equal(await send(sock, mail('ok')), '10:Kdiscarded,');
    });
  });
});

describe('the listen backlog', () => {
  // the original listens with a backlog of 64; qrelay asks for the system's
  // maximum (net.core.somaxconn), so a burst of clients waits instead of
  // finding the backlog full (docs/differences.md)
  const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'latin1'));
  const clients = Math.min(300, somaxconn - 8);
  it(`queues ${clients} clients at the cap without refusing a connect`, { skip: clients <= 64 + 4 ? 'net.core.somaxconn is too small here' : false }, async () => {
    await withDaemon(`max_connections = 4\nmax_connections_per_uid = 0\n${HANDLER}`, async (daemon, sock) => {
      const held = Array.from({ length: 4 }, () => sendAndWait(sock, mail('hold')));
      await daemon.waitForStderr(/^Connection limit of 4 reached/m);
      const errors: string[] = [];
      const waiting = Array.from({ length: clients }, () => {
        const w = sendAndWait(sock, mail('ok'));
        w.socket.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
        return w;
      });
      await Promise.all(waiting.map((w) => new Promise((r) => (w.socket.connecting ? w.socket.once('connect', r).once('error', r) : r(undefined)))));
      assert.deepEqual(errors, [], 'every connect was queued');
      for (const h of held) h.socket.destroy();
      const answers = await Promise.all(waiting.map((w) => w.answer));
      assert.deepEqual(answers, Array(clients).fill('10:Kdiscarded,'));
    });
  });
});

describe('max_connections_per_uid', () => {
  it('answers a uid over its cap at once and logs it once a minute', async () => {
    await withDaemon(`max_connections_per_uid = 2\n${HANDLER}`, async (daemon, sock) => {
      const held = [sendAndWait(sock, mail('hold')), sendAndWait(sock, mail('hold'))];
      await waitFor(() => daemon.stdout().split('holding').length > 2, 5_000, 'both handlers running');
      const uid = process.geteuid!();
      const refusal = `Ztoo many connections from uid ${uid}`;
      for (let i = 0; i < 5; i++) assert.equal(await send(sock, mail('ok')), `${refusal.length}:${refusal},`);
      await daemon.waitForStderr(new RegExp(`^\\[pid=${process.pid} uid=${uid}( mail=[0-9a-f]+)?\\] Too many connections from uid ${uid} \\(max_connections_per_uid 2\\)$`, 'm'));
      assert.equal(daemon.stderr().match(/Too many connections from uid/g)?.length, 1);
      // a slot of the uid frees up when one of its connections ends
      held[0]!.socket.destroy();
      await held[0]!.answer;
      let answer = '';
      for (let i = 0; i < 50 && answer !== '10:Kdiscarded,'; i++) answer = await send(sock, mail('ok'));
      assert.equal(answer, '10:Kdiscarded,');
      held[1]!.socket.destroy();
    });
  });

  it('is off with 0', async () => {
    await withDaemon(`max_connections_per_uid = 0\n${HANDLER}`, async (daemon, sock) => {
      // more than the default of 64, in steps the listen backlog takes
      const held: Pending[] = [];
      for (let step = 1; step <= 3; step++) {
        for (let i = 0; i < 30; i++) held.push(sendAndWait(sock, mail('hold')));
        await waitFor(() => daemon.stdout().split('holding').length > held.length, 10_000, `${held.length} handlers running`);
      }
      assert.equal(await send(sock, mail('ok')), '10:Kdiscarded,');
      for (const h of held) h.socket.destroy();
    });
  });

  for (const value of ["'many'", '-1', '2.5']) {
    it(`refuses ${value} at startup`, async () => {
      const daemon = await startDaemon({ config: `max_connections_per_uid = ${value}\n${HANDLER}`, noWait: true });
      try {
        assert.equal(await daemon.exited, 1);
        assert.match(daemon.stderr(), /`max_connections_per_uid` must be an integer from 0 to 1000000/);
      } finally {
        removeDir(daemon.dir);
      }
    });
  }
});

describe('a downstream whose listen backlog is full', () => {
  it('gets Zrelay failed, as the original answers (docs/actions.md, connect)', async () => {
    const dir = tempDir();
    const name = `qrelay-full-${randomBytes(6).toString('hex')}`;
    const path = join(dir, 'full.sock');
    const listeners = [listenUnix(Buffer.from(path), false, 0, path), listenUnix(Buffer.from(name), true, 0, name)];
    const queued: number[] = [];
    try {
      // fill both backlogs: connect until the kernel says EAGAIN
      for (const target of [{ name: Buffer.from(path), abstract: false }, { name: Buffer.from(name), abstract: true }]) {
        for (let i = 0; i < 100; i++) {
          const { fd, inProgress } = connectSocket({ family: 'unix', ...target }, 'stream', false);
          if (inProgress) {
            closeFd(fd);
            break;
          }
          queued.push(fd);
        }
      }
      await withDaemon(
        HANDLER,
        async (daemon, sock) => {
          assert.equal(await send(sock, mail('full')), '13:Zrelay failed,');
          assert.equal(await send(sock, mail('fullabstract')), '13:Zrelay failed,');
          await daemon.waitForStderr(/\] Failed to write: Transport endpoint is not connected\n/);
          assert.doesNotMatch(daemon.stderr(), /Failed to connect/);
        },
        { FULL_PATH: path, FULL_NAME: name },
      );
    } finally {
      for (const fd of [...queued, ...listeners]) closeFd(fd);
      removeDir(dir);
    }
  });
});
