// `connect` to several servers (docs/fleet.md): failover in order or in a
// random rotation, which answers are final, backoff of failed servers, the
// per-server timeout options, and host names looked up again on SIGHUP.
// Real daemons, real test servers on Unix sockets and loopback TCP.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { FIXTURES } from './helpers/exec-children.js';
import { downstreamServer, netstring, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';

/** A loopback TCP address where nothing listens: connecting is refused. */
async function refusingAddress(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `127.0.0.1:${port}`;
}

function answering(text: string): (request: Buffer) => Buffer {
  return () => netstring(text);
}

const mail = (to: string): Buffer => qmqpRequest('Subject: fleet\r\n\r\nbody\r\n', 'sender@example.org', [`${to}@example.com`]);

/** The answer as the client receives it. */
const framed = (text: string): string => netstring(text).toString('latin1');

/** Escapes a string for a RegExp. */
function literal(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

describe('connect with several servers', () => {
  let dir: string;
  let daemon: RunningDaemon;
  let sock: string;
  const servers: Record<string, DownstreamServer> = {};
  const refused: Record<string, string> = {};

  before(async () => {
    dir = tempDir();
    servers.z = await downstreamServer(join(dir, 'z.sock'), answering('Ztry later'));
    servers.k = await downstreamServer(join(dir, 'k.sock'), answering('Kqueued as 1'));
    servers.k1 = await downstreamServer(join(dir, 'k1.sock'), answering('Kone'));
    servers.k2 = await downstreamServer(join(dir, 'k2.sock'), answering('Ktwo'));
    servers.d = await downstreamServer(join(dir, 'd.sock'), answering('Dno such user'));
    servers.closer = await downstreamServer(join(dir, 'closer.sock'), (_request, socket) => {
      socket.destroy();
      return undefined;
    });
    servers.silent = await downstreamServer(join(dir, 'silent.sock'), () => undefined);
    servers.after = await downstreamServer(join(dir, 'after.sock'), answering('Kafter'));
    for (const name of ['three', 'random']) refused[name] = await refusingAddress();
    const path = (name: string): string => JSON.stringify(servers[name]!.path);
    daemon = await startDaemon({
      dir,
      config: `
local c_object = qmqp_resolve('/c')
local cases = {
  three = function(m) return m:connect(${JSON.stringify(refused.three)}, ${path('z')}, ${path('k')}) end,
  random = function(m) return m:connect({${JSON.stringify(refused.random)}, ${path('k1')}, ${path('k2')}}, {order = 'random'}) end,
  closer = function(m) return m:connect(${path('closer')}, ${path('after')}) end,
  silent = function(m) return m:connect({${path('silent')}, ${path('after')}}, {timeout = 0.3}) end,
  d = function(m) return m:connect(${path('d')}, ${path('after')}) end,
  options = function(m)
    local function try(...)
      local ok, err = pcall(m.connect, m, ...)
      return ok and 'ok' or tostring(err):gsub('^[^:]*:%d+: ', '')
    end
    print('options', try('/a', {connect_timeout = 0}), try('/a', {timeout = 'x'}), try({'/a'}, {order = 'fastest'}),
      try({'/a'}, {bogus = 1}), try({'/a'}, {[1] = 2}), try({'/a', {}}), try({}), try({'/a'}, 'b'), try({'/a'}, {}, {}),
      try('/a', '/b', {timeout = 3600, connect_timeout = '0.5', order = 'sequential'}), try('/a', 42, c_object))
    return m:discard()
  end,
}
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  return cases[m.recipients[1]:match('^(.-)@')](m)
end)`,
    });
    sock = join(dir, 'qrelay.sock');
  });

  after(async () => {
    await daemon?.stop();
    for (const server of Object.values(servers)) await server.close();
    removeDir(dir);
  });

  it('moves on past a refused connection and a Z answer; the third server takes the mail and the client gets its K', async () => {
    assert.equal(await send(sock, mail('three')), framed('Kqueued as 1'));
    assert.equal(servers.z!.requests.length, 1);
    assert.equal(servers.k!.requests.length, 1);
    assert.deepEqual(servers.k!.requests[0], servers.z!.requests[0], 'every server gets the same request');
    await daemon.waitForStderr(new RegExp(`server=${literal(refused.three!)}: Failed to connect: Connection refused \\(failures=1, skipped for 10 s\\)`));
    await daemon.waitForStderr(new RegExp(`server=${literal(servers.z!.path)}: answered Ztry later`));
    await daemon.waitForStderr(new RegExp(`action=connect target=${literal(servers.k!.path)} tried=3 answer=K`));
    // the line per mail says it: no separate relay line (QRELAY_LOG=quiet has one, below)
    assert.doesNotMatch(daemon.stderr(), /relay server=/);
  });

  it("spreads mails over the healthy servers with order='random'", async () => {
    const answers = [];
    for (let i = 0; i < 40; i++) answers.push(await send(sock, mail('random')));
    assert.ok(answers.every((a) => a === framed('Kone') || a === framed('Ktwo')), answers.join(' '));
    const one = servers.k1!.requests.length;
    const two = servers.k2!.requests.length;
    assert.equal(one + two, 40);
    // each gets about half; below 8 of 40 has a probability under 1e-4
    assert.ok(one >= 8 && two >= 8, `k1 got ${one}, k2 got ${two}`);
  });

  it('does not try the next server when the first accepted the request and closed without answering', async () => {
    assert.equal(await send(sock, mail('closer')), framed('Zrelay failed'));
    assert.equal(servers.closer!.requests.length, 1);
    assert.equal(servers.after!.connections(), 0, 'the next server was not tried');
    await daemon.waitForStderr(new RegExp(`server=${literal(servers.closer!.path)}: Peer closed the socket prematurely.*\\n.*action=connect target=${literal(servers.closer!.path)} tried=1 answer=Z`));
  });

  it('gives up on a server that does not answer within the timeout option, without trying the next', async () => {
    const started = Date.now();
    assert.equal(await send(sock, mail('silent')), framed('Zrelay failed'));
    assert.ok(Date.now() - started < 30_000, 'the 60 s default was not used');
    assert.equal(servers.silent!.requests.length, 1);
    assert.equal(servers.after!.connections(), 0);
    await daemon.waitForStderr(new RegExp(`server=${literal(servers.silent!.path)}: Connect timeout`));
  });

  it('passes a D answer through as final', async () => {
    assert.equal(await send(sock, mail('d')), framed('Dno such user'));
    assert.equal(servers.after!.connections(), 0);
  });

  it('checks the arguments and options of connect like those of exec', async () => {
    assert.equal(await send(sock, mail('options')), framed('Kdiscarded'));
    await waitFor(() => /^options\t/m.test(daemon.stdout()));
    const line = /^options\t(.*)$/m.exec(daemon.stdout())![1]!.split('\t');
    const expected = [
      /Bad timeout value/,
      /Timeout is not a number/,
      /Bad order value/,
      /Unknown option/,
      /Option key is not a string/,
      /bad argument #1 to 'connect' \(SocketAddress expected, got table at index 2\)/,
      /bad argument #1 to 'connect' \(SocketAddress expected, got table\)/,
      /Invalid parameters/,
      /Invalid parameters/,
      /^ok$/,
      /^ok$/,
    ];
    assert.equal(line.length, expected.length, line.join(' | '));
    expected.forEach((re, i) => assert.match(line[i]!, re, `check ${i}: ${line[i]}`));
  });
});

/** test/fixtures/black-hole.py: a TCP server whose connection attempts time out until it is opened. */
async function blackHole(): Promise<{ address: string; connections: () => number; open(): Promise<void>; close(): void }> {
  const child = spawn(join(FIXTURES, 'black-hole.py'), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout! });
  let connections = 0;
  let port: string | undefined;
  let opened = false;
  lines.on('line', (line) => {
    if (port === undefined) port = line;
    else if (line === 'connection') connections++;
    else if (line === 'open') opened = true;
  });
  await waitFor(() => port !== undefined, 10_000, 'black hole port');
  return {
    address: `127.0.0.1:${port}`,
    connections: () => connections,
    open: async () => {
      child.stdin!.write('open\n');
      await waitFor(() => opened, 10_000, 'black hole open');
    },
    close: () => child.kill(),
  };
}

describe('backoff of a server that is down', () => {
  it('skips it without a connection attempt or a connect timeout until the backoff ends, then tries it again', async () => {
    const dir = tempDir();
    const down = await blackHole();
    const second = await downstreamServer(join(dir, 'second.sock'), answering('Ksecond'));
    const daemon = await startDaemon({
      dir,
      config: `
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  return m:connect(${JSON.stringify(down.address)}, ${JSON.stringify(second.path)}, {connect_timeout = 1.5})
end)`,
      env: { QRELAY_TEST_BACKOFF_FIRST_MS: '4000' },
    });
    const sock = join(dir, 'qrelay.sock');
    try {
      // first mail: pays the connect timeout once, then goes to the second server
      assert.equal(await send(sock, mail('one')), framed('Ksecond'));
      const failedAt = Date.now();
      await daemon.waitForStderr(new RegExp(`server=${literal(down.address)}: Connect timeout \\(failures=1, skipped for 4 s\\)`));
      await daemon.waitForStderr(/action=connect target=\S+second\.sock tried=2 answer=K/);

      // second mail: straight to the second server, no connect timeout paid
      const started = Date.now();
      assert.equal(await send(sock, mail('two')), framed('Ksecond'));
      assert.ok(Date.now() - started < 1_500, `took ${Date.now() - started} ms: a connect timeout was paid`);
      await waitFor(() => (daemon.stderr().match(/action=connect target=\S+second\.sock tried=1 answer=K/g) ?? []).length === 1);

      // the server is back, but still in backoff: no connection attempt at all
      await down.open();
      assert.equal(await send(sock, mail('three')), framed('Ksecond'));
      assert.ok(Date.now() - failedAt < 4_000, 'still within the backoff');
      assert.equal(down.connections(), 0, 'no connection attempt while in backoff');

      // after the backoff it is tried again first, and takes the mail
      await new Promise((r) => setTimeout(r, Math.max(0, failedAt + 4_200 - Date.now())));
      assert.equal(await send(sock, mail('four')), framed('Kblack hole open'));
      assert.equal(down.connections(), 1);
      await daemon.waitForStderr(new RegExp(`server=${literal(down.address)}: answering again after 1 failure`));
      assert.equal(second.requests.length, 3);
    } finally {
      assert.equal(await daemon.stop(), 0);
      down.close();
      await second.close();
      removeDir(dir);
    }
  });
});

/** Whether this process may make a mount namespace and bind-mount in it (root, unshare present). */
function canUnshareMount(): boolean {
  // binds /etc/hosts over itself, in a namespace that ends with the command
  return spawnSync('unshare', ['--mount', 'mount', '--bind', '/etc/hosts', '/etc/hosts'], { stdio: 'ignore' }).status === 0;
}

describe('a host name with several addresses', { skip: canUnshareMount() ? false : 'needs root and unshare --mount' }, () => {
  it('resolves to all of them, and to the new ones after they change and SIGHUP; a failed lookup keeps the old ones', async () => {
    const dir = tempDir();
    const hosts = join(dir, 'hosts');
    // the name's servers: the first address answers Z, so the second one shows up as well
    const first = await downstreamServer({ host: '127.0.0.5', port: 0 }, answering('Zbusy five'));
    const port = Number(first.path.split(':')[1]);
    const others = [
      await downstreamServer({ host: '127.0.0.6', port }, answering('Ksix')),
      await downstreamServer({ host: '127.0.0.7', port }, answering('Zbusy seven')),
      await downstreamServer({ host: '127.0.0.8', port }, answering('Keight')),
    ];
    const [six, seven, eight] = others as [DownstreamServer, DownstreamServer, DownstreamServer];
    writeFileSync(hosts, '127.0.0.1 localhost\n127.0.0.5 mx.fleet.test\n127.0.0.6 mx.fleet.test\n');
    // the daemon sees the test's hosts file over /etc/hosts in a mount namespace of its own
    const daemon = await startDaemon({
      dir,
      wrapper: ['unshare', '--mount', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$@"', hosts],
      config: `
local mx = qmqp_resolve('mx.fleet.test:${port}')
print('resolved', tostring(mx))
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:connect(mx) end)`,
    });
    const sock = join(dir, 'qrelay.sock');
    const what = literal(`qmqp_resolve("mx.fleet.test:${port}")`);
    try {
      assert.match(daemon.stdout(), new RegExp(`^resolved\\t127\\.0\\.0\\.5:${port}$`, 'm'));
      assert.equal(await send(sock, mail('a')), framed('Ksix'));
      assert.equal(first.requests.length, 1);
      await daemon.waitForStderr(new RegExp(`action=connect target=127\\.0\\.0\\.6:${port} tried=2 answer=K`));

      writeFileSync(hosts, '127.0.0.1 localhost\n127.0.0.7 mx.fleet.test\n127.0.0.8 mx.fleet.test\n');
      daemon.child.kill('SIGHUP');
      await daemon.waitForStderr(new RegExp(`${what}: now 127\\.0\\.0\\.7:${port} 127\\.0\\.0\\.8:${port} \\(was 127\\.0\\.0\\.5:${port} 127\\.0\\.0\\.6:${port}\\)`));
      assert.equal(await send(sock, mail('b')), framed('Keight'));
      assert.equal(seven.requests.length, 1);
      assert.equal(first.connections() + six.connections(), 2, 'the old addresses are no longer used');

      writeFileSync(hosts, '127.0.0.1 localhost\n');
      daemon.child.kill('SIGHUP');
      await daemon.waitForStderr(new RegExp(`${what}: Failed to resolve "mx\\.fleet\\.test":"${port}": .*; keeping 127\\.0\\.0\\.7:${port} 127\\.0\\.0\\.8:${port}`));
      assert.equal(await send(sock, mail('c')), framed('Keight'));
      assert.equal(eight.requests.length, 2);
    } finally {
      assert.equal(await daemon.stop(), 0);
      for (const server of [first, ...others]) await server.close();
      removeDir(dir);
    }
  });
});

describe('connect with several servers, QRELAY_LOG=quiet', () => {
  it('names the server that answered in a relay line of the mail, as there is no line per mail', async () => {
    const dir = tempDir();
    const k = await downstreamServer(join(dir, 'k.sock'), answering('Kqueued'));
    const refusedAt = await refusingAddress();
    const daemon = await startDaemon({
      dir,
      env: { QRELAY_LOG: 'quiet' },
      config: `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:connect(${JSON.stringify(refusedAt)}, ${JSON.stringify(k.path)}) end)`,
    });
    try {
      assert.equal(await send(join(dir, 'qrelay.sock'), mail('quiet')), framed('Kqueued'));
      const uid = process.getuid!();
      await daemon.waitForStderr(new RegExp(`^\\[pid=${process.pid} uid=${uid}\\] relay server=${literal(k.path)} tried=2 answer=K$`, 'm'));
      assert.doesNotMatch(daemon.stderr(), /action=connect/);
    } finally {
      await daemon.stop();
      await k.close();
      removeDir(dir);
    }
  });
});
