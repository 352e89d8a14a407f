// The daemon on a real Unix socket: every answer of docs/actions.md this core
// covers, byte for byte, the relayed bytes of docs/protocol.md, limits, timeouts
// and cancellation.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createConnection } from 'node:net';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downstreamServer, exchange, netstring, qmqpBody, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';
import { removeDir, startDaemon, waitFor, type RunningDaemon } from './helpers/daemon.js';

const MESSAGE = 'Subject: test\r\n\r\nHello\r\n';
const T_Q_20_REQUEST = '68:24:Subject: test\r\n\r\nHello\r\n,17:alice@example.com,15:bob@example.org,,';

const CONFIG = `
local dir = os.getenv('TEST_DIR')
local abstract = os.getenv('ABSTRACT_NAME')
max_size = 1024
qmqp_listen(dir .. '/small.sock', function(m) return m:discard() end)
max_size = 16777216
local function handler(m)
  local to = m.recipients[1]
  local user = to:match('^(.-)@')
  if user == 'discard' then return m:discard() end
  if user == 'reject' then return m:reject() end
  if user == 'fail' then error('deliberate failure') end
  if user == 'nothing' then return end
  if user == 'string' then return 'Kok' end
  if user == 'last' then return m:discard(), 42 end
  if user == 'first' then return 42, m:discard() end
  if user == 'errtable' then error({}) end
  if user == 'localhost' then return m:connect('localhost') end
  if user == 'relay1' then
    m:insert_header('X-Foo', 'bar')
    return m:connect(dir .. '/down.sock')
  end
  if user == 'relay2' then
    m:insert_header('X-A', '1')
    m:insert_header('X-B', '2')
    m.sender = 'bounce@example.net'
    return m:connect(dir .. '/down.sock')
  end
  if user == 'abstract' then return m:connect('@' .. abstract .. '-down') end
  if user == 'refused' then return m:connect(dir .. '/nobody.sock') end
  return m:connect(dir .. '/down.sock')
end
qmqp_listen(dir .. '/qrelay.sock', handler)
qmqp_listen('@' .. abstract, handler)
`;

describe('QMQP end to end', () => {
  let daemon: RunningDaemon;
  let sock: string;
  let down: DownstreamServer;
  let answer: (request: Buffer) => Buffer | undefined = () => netstring('Kok');
  const abstract = `qrelay-test-${randomBytes(6).toString('hex')}`;

  before(async () => {
    daemon = await startDaemon({ config: CONFIG, env: { ABSTRACT_NAME: abstract } });
    sock = join(daemon.dir, 'qrelay.sock');
    down = await downstreamServer(join(daemon.dir, 'down.sock'), (r) => answer(r));
  });
  after(async () => {
    await down.close();
    assert.equal(await daemon.stop(), 0);
    removeDir(daemon.dir);
  });

  const mail = (rcpt: string, sender = 'alice@example.com'): Buffer => qmqpRequest(MESSAGE, sender, [rcpt]);

  it('answers discard, reject and parse failures byte for byte', async () => {
    assert.equal(await send(sock, mail('discard@x.y')), '10:Kdiscarded,');
    assert.equal(await send(sock, mail('reject@x.y')), '9:Drejected,');
    assert.equal(await send(sock, netstring('0:,')), '16:Dmalformed input,');
    assert.equal(await send(sock, Buffer.from('0:,')), '16:Dmalformed input,');
    assert.equal(await send(sock, mail('discard@x.y', 'not an address')), '12:Dbad address,');
    assert.equal(await send(sock, qmqpRequest('m', '', ['discard@x.y'])), '12:Dbad address,');
    assert.equal(await send(sock, netstring('7:message,18:sender@example.com,')), '16:Dmalformed input,');
  });

  it('answers Zscript failed for errors and wrong return values', async () => {
    for (const user of ['fail', 'nothing', 'string', 'last', 'errtable', 'localhost']) {
      assert.equal(await send(sock, mail(`${user}@x.y`)), '14:Zscript failed,', user);
    }
    assert.equal(await send(sock, mail('first@x.y')), '10:Kdiscarded,');
    await daemon.waitForStderr(new RegExp(`\\[pid=${process.pid} uid=${process.getuid!()} mail=[0-9a-f]{8}\\] .*deliberate failure`));
    await daemon.waitForStderr(/Wrong return type from Lua handler: expected an action \(m:connect\(…\), .*\), got nothing\n/);
    await daemon.waitForStderr(/Wrong return type from Lua handler: expected an action .*, got string\n/);
    await daemon.waitForStderr(/Wrong return type from Lua handler: expected an action .*, got number\n/);
    await daemon.waitForStderr(/\] table\n/);
    await daemon.waitForStderr(/Failed to resolve "localhost":"628": Name or service not known/);
  });

  it('relays the documented examples byte for byte, with the client\'s pid and uid', async () => {
    const received = `Received: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\n`;
    answer = () => netstring('Kok 1700000000 qp 123');
    down.requests.length = 0;
    const body = Buffer.from(T_Q_20_REQUEST.slice(3, -1), 'latin1');
    const req1 = netstring(Buffer.from(body.toString('latin1').replace('bob@example.org', 'relay1@example.org').replace('15:relay1', '18:relay1')));
    assert.equal(await send(sock, req1), '21:Kok 1700000000 qp 123,');
    const block1 = `X-Foo: bar\r\n${received}${MESSAGE}`;
    const inner1 = `${block1.length}:${block1},17:alice@example.com,18:relay1@example.org,`;
    assert.equal(down.requests[0]!.toString('latin1'), `${inner1.length}:${inner1},`);

    // the exact vector, pid 4242 uid 1000 replaced by ours
    assert.equal(await send(sock, qmqpRequest(MESSAGE, 'alice@example.com', ['relay2@example.org'])), '21:Kok 1700000000 qp 123,');
    const block2 = `X-B: 2\r\nX-A: 1\r\n${received}${MESSAGE}`;
    const inner2 = `${block2.length}:${block2},18:bounce@example.net,18:relay2@example.org,`;
    assert.equal(down.requests[1]!.toString('latin1'), `${inner2.length}:${inner2},`);
    answer = () => netstring('Kok');
  });

  it('names the process that connected in the Received line, not the one the socket was handed to', async () => {
    down.requests.length = 0;
    const socket = createConnection(sock);
    await once(socket, 'connect');
    // a child inherits the connected socket as fd 3, sends the request and prints the answer
    // (without closing its side first: that would cancel the mail)
    const script = "const s = new (require('node:net').Socket)({ fd: 3, readable: true, writable: true }); s.on('data', (d) => process.stdout.write(d)); s.on('end', () => s.end()); s.write(Buffer.from(process.argv[1], 'base64'));";
    const child = spawn(process.execPath, ['-e', script, mail('handed@x.y').toString('base64')], { stdio: ['ignore', 'pipe', 'inherit', socket] });
    socket.destroy();
    let answer = '';
    child.stdout!.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    // 'close': the child has exited and its stdout is read to the end
    await once(child, 'close');
    assert.equal(answer, '3:Kok,');
    const relayed = down.requests[0]!.toString('latin1');
    assert.ok(relayed.includes(`Received: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\n`), relayed);
    assert.ok(!relayed.includes(`PID=${child.pid} `), relayed);
  });

  it('passes the downstream answer through and maps downstream failures', async () => {
    const cases: [Buffer | undefined, string][] = [
      [netstring('Dno such user'), '13:Dno such user,'],
      [netstring('Z' + 'x'.repeat(255)), `256:Z${'x'.repeat(255)},`],
      [netstring('Z' + 'x'.repeat(256)), '13:Zrelay failed,'],
      [netstring('Xok'), '25:Zmalformed relay response,'],
      [netstring(''), '25:Zmalformed relay response,'],
      [Buffer.from('3:Kok,\n'), '13:Zrelay failed,'],
      [Buffer.from('3:Kok;'), '13:Zrelay failed,'],
      [Buffer.from('3:Ko'), '13:Zrelay failed,'],
      [Buffer.alloc(0), '13:Zrelay failed,'],
    ];
    for (const [reply, expected] of cases) {
      answer = () => reply;
      assert.equal(await send(sock, mail('down@x.y')), expected, String(reply));
    }
    answer = () => netstring('Kok');
    assert.equal(await send(sock, mail('refused@x.y')), '15:Zconnect failed,');
    await daemon.waitForStderr(/Failed to connect: No such file or directory/);
    await daemon.waitForStderr(/Malformed QMQP response/);
    await daemon.waitForStderr(/Netstring is too large: 257/);
    await daemon.waitForStderr(/Garbage received after netstring/);
    await daemon.waitForStderr(/Peer closed the socket prematurely/);
  });

  it('accepts 1024 recipients and refuses 1025', async () => {
    const r = Array.from({ length: 1024 }, (_, i) => `discard${i}@example.com`);
    r[0] = 'discard@example.com';
    assert.equal(await send(sock, qmqpRequest('m', 'a@b.c', r)), '10:Kdiscarded,');
    assert.equal(await send(sock, qmqpRequest('m', 'a@b.c', [...r, 'more@example.com'])), '20:Dtoo many recipients,');
  });

  it('accepts max_size and answers max_size + 1 with Dmessage too large', async () => {
    const small = join(daemon.dir, 'small.sock');
    const bodyOfSize = (n: number): Buffer => {
      for (let length = n; length >= 0; length--) {
        const body = qmqpBody('x'.repeat(length), 'a@b.c', ['d@e.f']);
        if (body.length === n) return body;
      }
      throw new Error(`no body of ${n} bytes`);
    };
    const exact = bodyOfSize(1024);
    const over = bodyOfSize(1025);
    assert.equal(await send(small, netstring(exact)), '10:Kdiscarded,');
    // the client sends all of it, then reads: it gets the reason
    const result = await exchange(small, netstring(over));
    assert.equal(result.response.toString(), '34:Dmessage too large (max_size 1024),');
    await waitFor(() => daemon.stderr().includes('Netstring is too large: 1025'), 5000, 'log line');
    // a client that announces a huge request and waits for the answer gets it too
    const announced = await exchange(small, Buffer.from('16777216:abc'), { halfClose: false, pauseMs: 0 }).catch((e: Error) => e);
    assert.ok(!(announced instanceof Error), String(announced));
    assert.equal(announced.response.toString(), '34:Dmessage too large (max_size 1024),');
  });

  it('closes silently on framing errors', async () => {
    for (const bad of ['x', '5:abcde;', '-1:', '99999999999999999999:', '0'.repeat(32)]) {
      const result = await exchange(sock, Buffer.from(bad));
      assert.equal(result.response.length, 0, bad);
    }
    await daemon.waitForStderr(/Malformed netstring/);
  });

  it('serves requests that arrive in many small chunks', async () => {
    const req = mail('discard@x.y');
    const chunks = Array.from({ length: Math.ceil(req.length / 7) }, (_, i) => req.subarray(i * 7, i * 7 + 7));
    assert.equal((await exchange(sock, chunks, { pauseMs: 5 })).response.toString(), '10:Kdiscarded,');
  });

  it('closes an idle connection after 5 seconds without an answer', async () => {
    const started = Date.now();
    const result = await exchange(sock, Buffer.from('100:abc'));
    const elapsed = Date.now() - started;
    assert.equal(result.response.length, 0);
    assert.ok(elapsed >= 4500 && elapsed < 8000, `closed after ${elapsed} ms`);
  });

  for (const how of ['disconnect', 'half-close'] as const) {
    it(`cancels a relay when the client ${how}s, without an answer`, async () => {
      let downstreamClosed!: () => void;
      const closed = new Promise<void>((r) => (downstreamClosed = r));
      answer = (_r) => undefined;
      down.server.once('connection', (s) => s.on('close', () => downstreamClosed()));
      const { connect } = await import('node:net');
      const client = connect({ path: sock, allowHalfOpen: true });
      const got: Buffer[] = [];
      client.on('data', (d: Buffer) => got.push(d));
      client.on('error', () => {});
      // the daemon closes the connection when the mail is over (at once when destroyed here)
      const clientClosed = new Promise<void>((r) => client.once('close', () => r()));
      client.write(mail('hold@x.y'));
      await waitFor(() => down.requests.some((r) => r.includes('hold@x.y')), 5000, 'relayed request');
      if (how === 'disconnect') client.destroy();
      else client.end();
      await closed;
      await clientClosed;
      assert.equal(Buffer.concat(got).length, 0);
      client.destroy();
      answer = () => netstring('Kok');
      assert.equal(await send(sock, mail('discard@x.y')), '10:Kdiscarded,');
    });
  }

  it('is reachable on an abstract socket by a non-Node client, and relays to one', async () => {
    const script = `
import socket, sys, threading
name = sys.argv[1]
srv = socket.socket(socket.AF_UNIX)
srv.bind('\\0' + name + '-down')
srv.listen(1)
def serve():
    c, _ = srv.accept()
    data = b''
    while not data.endswith(b',,'):
        data += c.recv(65536)
    c.sendall(b'6:Kabstr,')
    c.close()
t = threading.Thread(target=serve); t.start()
s = socket.socket(socket.AF_UNIX)
s.connect('\\0' + name)
req = sys.argv[2].encode()
s.sendall(req)
out = b''
while True:
    d = s.recv(100)
    if not d: break
    out += d
print(out.decode())
t.join(5)
`;
    const result = spawnSync('python3', ['-c', script, abstract, mail('abstract@x.y').toString('latin1')], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.stdout.trim(), '6:Kabstr,', result.stderr);
  });
});
