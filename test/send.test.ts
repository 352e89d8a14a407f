// `qrelay send` and `qrelay-send` (docs/command-line.md): the request on
// the wire, the answer printed, sysexits codes, 16 MiB, --timeout.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAIN, ROOT, removeDir, startDaemon, tempDir, type RunningDaemon } from './helpers/daemon.js';
import { downstreamServer, netstring, qmqpRequest } from './helpers/qmqp.js';

const SEND_BIN = join(ROOT, 'dist', 'send', 'bin.js');

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the client asynchronously (the servers live in this process). */
function runSend(args: readonly string[], input: Buffer | string, bin: 'subcommand' | 'bin' = 'subcommand'): Promise<Result> {
  const argv = bin === 'bin' ? [SEND_BIN, ...args] : [MAIN, 'send', ...args];
  const child = spawn(process.execPath, argv, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr });
    }),
  );
}

const MESSAGE = 'Subject: hi\n\nHello\n';

describe('qrelay send against the daemon', () => {
  let daemon: RunningDaemon;
  before(async () => {
    daemon = await startDaemon({
      config: `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  local to = m.recipients[1]
  if to == 'reject@example.org' then return m:reject() end
  if to == 'fail@example.org' then error('later') end
  return m:discard()
end)`,
    });
  });
  after(async () => {
    await daemon.stop();
    removeDir(daemon.dir);
  });

  for (const bin of ['subcommand', 'bin'] as const) {
    it(`exits 0 for K, 77 for D, 75 for Z and prints the answer (${bin === 'bin' ? 'qrelay-send' : 'qrelay send'})`, async () => {
      const socket = join(daemon.dir, 'qrelay.sock');
      for (const [to, status, answer] of [
        ['bob@example.org', 0, 'Kdiscarded'],
        ['reject@example.org', 77, 'Drejected'],
        ['fail@example.org', 75, 'Zscript failed'],
      ] as const) {
        const r = await runSend(['--socket', socket, '-f', 'alice@example.com', to], MESSAGE, bin);
        assert.equal(r.status, status, r.stderr);
        assert.equal(r.stdout, `${answer}\n`);
        assert.equal(r.stderr, '');
      }
    });
  }
});

describe('qrelay send against a test server', () => {
  let dir: string;
  before(() => {
    dir = tempDir();
  });
  after(() => removeDir(dir));

  it('sends exactly the QMQP request and maps each answer class', async () => {
    for (const [answer, status] of [
      ['Kok thanks', 0],
      ['Zbusy', 75],
      ['Dno such user', 77],
    ] as const) {
      const down = await downstreamServer(join(dir, 'down.sock'), () => netstring(answer));
      try {
        const r = await runSend(['--socket', join(dir, 'down.sock'), '-f', 'alice@example.com', 'bob@example.org', 'carol@example.org'], MESSAGE);
        assert.equal(r.status, status, r.stderr);
        assert.equal(r.stdout, `${answer}\n`);
        assert.deepEqual(down.requests, [qmqpRequest(MESSAGE, 'alice@example.com', ['bob@example.org', 'carol@example.org'])]);
      } finally {
        await down.close();
      }
    }
  });

  it('sends a 16 MiB message over TCP (--host, --port)', async () => {
    const big = Buffer.alloc(16 * 1024 * 1024, 'x');
    const expected = qmqpRequest(big, 'a@b.c', ['d@e.f']);
    let received = 0;
    let same = true;
    const server: Server = createServer((s) => {
      s.on('data', (d: Buffer) => {
        same &&= d.equals(expected.subarray(received, received + d.length));
        received += d.length;
        if (received === expected.length) s.end(netstring(same ? 'Kbig' : 'Dgarbled'));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as { port: number }).port;
      const r = await runSend(['--host', '127.0.0.1', '--port', String(port), '-f', 'a@b.c', 'd@e.f'], big);
      assert.equal(r.status, 0, r.stderr);
      assert.equal(r.stdout, 'Kbig\n');
    } finally {
      server.close();
    }
  });

  it('gives up at --timeout when the server never answers (exit 75)', async () => {
    const sockets = new Set<import('node:net').Socket>();
    const server = createServer((s) => sockets.add(s));
    await new Promise<void>((r) => server.listen(join(dir, 'silent.sock'), r));
    try {
      const started = Date.now();
      const r = await runSend(['--socket', join(dir, 'silent.sock'), '--timeout', '1', '-f', 'a@b.c', 'd@e.f'], MESSAGE);
      assert.equal(r.status, 75);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /silent\.sock: no answer within 1 s\n$/);
      assert.ok(Date.now() - started < 30_000);
    } finally {
      for (const s of sockets) s.destroy();
      server.close();
    }
  });

  it('exits 75 when nobody listens, 64 for usage errors naming the argument', async () => {
    const r = await runSend(['--socket', join(dir, 'nobody.sock'), '-f', 'a@b.c', 'd@e.f'], MESSAGE);
    assert.equal(r.status, 75);
    assert.match(r.stderr, /nobody\.sock: Failed to connect: No such file or directory\n$/);
    for (const [args, named] of [
      [['d@e.f'], "'-f SENDER'"],
      [['-f', 'a@b.c'], 'RECIPIENT'],
      [['--bogus', '-f', 'a@b.c', 'd@e.f'], "'--bogus'"],
      [['--timeout', 'soon', '-f', 'a@b.c', 'd@e.f'], "'--timeout soon'"],
    ] as const) {
      const u = await runSend(args, '');
      assert.equal(u.status, 64, args.join(' '));
      assert.ok(u.stderr.includes(named), u.stderr);
    }
  });
});
