// The real daemon with `log_server` set: one Pond datagram per mail whose
// handler ran, every field checked (docs/pond.md), over UDP/IPv4,
// UDP/IPv6 and Unix datagram sockets (path and abstract name).
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { udpReceiver, unixReceiver, type DatagramReceiver } from './helpers/datagram-receiver.js';
import { luaString, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { decodeMailRecord, type DecodedMailRecord } from './helpers/pond-decoder.js';
import { downstreamServer, exchange, netstring, qmqpBody, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';

const MESSAGE = 'Subject: test\r\n\r\nHello\r\n';
const SENDER = 'alice@example.com';

const CONFIG = `
local dir = os.getenv('TEST_DIR')
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local user = m.recipients[1]:match('^(.-)@')
  if user == 'relay' then
    m.account = 'acct-42'
    m:insert_header('X-Foo', 'bar')
    return m:connect(dir .. '/down.sock')
  end
  if user == 'rewrite' then
    m.sender = 'bounce@example.net'
    m:insert_header('X-A', '1')
    m:insert_header('X-Bb', '22')
    return m:connect(dir .. '/down.sock')
  end
  if user == 'discard' then return m:discard() end
  if user == 'reject' then
    m.account = 'acct-r'
    m:insert_header('X-Rejected', 'yes')
    return m:reject()
  end
  if user == 'fail' then
    m.account = 7
    error('deliberate')
  end
  if user == 'sleep' then
    m:insert_header('X-Slept', '1')
    print('sleeping')
    sleep(5)
    return m:discard()
  end
  if user == 'hang' then
    m:insert_header('X-Hang', 'zz')
    return m:connect(dir .. '/down.sock')
  end
  return m:discard()
end)
log_server = os.getenv('LOG_SERVER')
`;

interface Expected {
  readonly site: string | undefined;
  readonly message: string;
  readonly length: number;
  readonly traffic: readonly [number, number];
}

/** The netstring the client gets for a response text. */
function answer(text: string): string {
  return `${text.length}:${text},`;
}

function body(recipients: readonly string[]): Buffer {
  return qmqpBody(MESSAGE, SENDER, recipients);
}

/** Checks one decoded record; time values for plausibility (docs/pond.md). */
function checkRecord(record: DecodedMailRecord, expected: Expected, sentAtMs: number, elapsedMs: number): void {
  assert.deepEqual(record.codes, expected.site === undefined ? [1, 13, 9, 10, 11, 15] : [1, 3, 13, 9, 10, 11, 15]);
  assert.equal(record.site, expected.site);
  assert.equal(record.message, expected.message);
  assert.equal(record.length, BigInt(expected.length));
  assert.deepEqual(record.traffic, [BigInt(expected.traffic[0]), BigInt(expected.traffic[1])]);
  assert.equal(record.type, 3);
  const timestampMs = Number(record.timestampUs / 1000n);
  assert.ok(timestampMs >= sentAtMs - 5 && timestampMs <= Date.now() + 5, `timestamp ${timestampMs} not within the exchange`);
  assert.ok(record.durationUs <= BigInt(Math.ceil(elapsedMs * 1000)), `duration ${record.durationUs} µs > ${elapsedMs} ms`);
}

/** Connects, sends, waits until `hangUp` resolves, then closes without waiting for an answer. */
function sendAndHangUp(path: string, request: Buffer, hangUp: () => Promise<unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    socket.on('error', reject);
    socket.on('connect', () => {
      socket.write(request);
      hangUp().then(() => {
        socket.destroy();
        resolve();
      }, reject);
    });
  });
}

/** How many times the `sleep` handler has started to sleep in `daemon`. */
function sleepers(daemon: RunningDaemon): number {
  return daemon.stdout().split('\n').filter((line) => line === 'sleeping').length;
}

function scenarios(makeReceiver: (dir: string) => Promise<DatagramReceiver>): void {
  let dir: string;
  let receiver: DatagramReceiver;
  let daemon: RunningDaemon;
  let down: DownstreamServer;
  let sock: string;
  let hangDown = false;

  before(async () => {
    dir = tempDir('qrelay-pond-');
    receiver = await makeReceiver(dir);
    down = await downstreamServer(join(dir, 'down.sock'), () => (hangDown ? undefined : netstring('Kok 1 2')));
    daemon = await startDaemon({ config: CONFIG, dir, env: { LOG_SERVER: receiver.logServer } });
    sock = join(dir, 'qrelay.sock');
  });

  after(async () => {
    await daemon?.stop();
    await down?.close();
    await receiver?.close();
    removeDir(dir);
  });

  /** Sends one mail, returns its datagram and the time frame of the exchange. */
  async function mail(recipients: readonly string[], expectedAnswer: string, expected: Expected): Promise<void> {
    const start = Date.now();
    const started = performance.now();
    assert.equal(await send(sock, qmqpRequest(MESSAGE, SENDER, recipients)), expectedAnswer);
    const record = decodeMailRecord(await receiver.next());
    checkRecord(record, expected, start, performance.now() - started);
  }

  it('relayed: account, inserted header, traffic and length count it', async () => {
    const b = body(['relay@example.org']);
    await mail(['relay@example.org'], answer('Kok 1 2'), {
      site: 'acct-42',
      message: `from=<${SENDER}> to=<relay@example.org> ok 1 2`,
      length: MESSAGE.length + 12,
      traffic: [b.length, b.length + 12],
    });
  });

  it('relayed with a rewritten sender and two headers, no account', async () => {
    const b = body(['rewrite@example.org', 'x@example.org']);
    await mail(['rewrite@example.org', 'x@example.org'], answer('Kok 1 2'), {
      site: undefined,
      message: 'from=<bounce@example.net> to=<rewrite@example.org>,<x@example.org> ok 1 2',
      length: MESSAGE.length + 8 + 10,
      traffic: [b.length, b.length + 18],
    });
  });

  it('discarded: no account, nothing sent', async () => {
    const b = body(['discard@example.org']);
    await mail(['discard@example.org'], answer('Kdiscarded'), {
      site: undefined,
      message: `from=<${SENDER}> to=<discard@example.org> discarded`,
      length: MESSAGE.length,
      traffic: [b.length, 0],
    });
  });

  it('rejected: account set, headers count for the length only', async () => {
    const b = body(['reject@example.org']);
    await mail(['reject@example.org'], answer('Drejected'), {
      site: 'acct-r',
      message: `from=<${SENDER}> to=<reject@example.org> rejected`,
      length: MESSAGE.length + 'X-Rejected: yes\r\n'.length,
      traffic: [b.length, 0],
    });
  });

  it('script failure: suffix `script failed`', async () => {
    const b = body(['fail@example.org']);
    await mail(['fail@example.org'], answer('Zscript failed'), {
      site: '7',
      message: `from=<${SENDER}> to=<fail@example.org> script failed`,
      length: MESSAGE.length,
      traffic: [b.length, 0],
    });
  });

  it('no datagram for Dmalformed input and Dbad address', async () => {
    assert.equal(await send(sock, netstring('garbage')), answer('Dmalformed input'));
    assert.equal(await send(sock, qmqpRequest(MESSAGE, 'no at sign', ['discard@example.org'])), answer('Dbad address'));
    // the next datagram is the following mail's: none was sent for the two above
    const b = body(['discard@example.org', 'after@example.org']);
    await mail(['discard@example.org', 'after@example.org'], answer('Kdiscarded'), {
      site: undefined,
      message: `from=<${SENDER}> to=<discard@example.org>,<after@example.org> discarded`,
      length: MESSAGE.length,
      traffic: [b.length, 0],
    });
  });

  it('cancelled while the handler sleeps: `canceled`, nothing sent, duration covers the wait', async () => {
    const start = Date.now();
    const started = performance.now();
    const recipients = ['sleep@example.org', 'carol@example.net'];
    const asleep = sleepers(daemon);
    // the client waits 300 ms, and at least until the handler sleeps
    await sendAndHangUp(sock, qmqpRequest(MESSAGE, SENDER, recipients), () =>
      Promise.all([waitFor(() => sleepers(daemon) > asleep, 5_000, 'the handler to sleep'), new Promise((r) => setTimeout(r, 300))]),
    );
    const record = decodeMailRecord(await receiver.next());
    const b = body(recipients);
    checkRecord(
      record,
      {
        site: undefined,
        message: `from=<${SENDER}> to=<sleep@example.org>,<carol@example.net> canceled`,
        length: MESSAGE.length + 'X-Slept: 1\r\n'.length,
        traffic: [b.length, 0],
      },
      start,
      performance.now() - started,
    );
    assert.ok(record.durationUs >= 250_000n, `duration ${record.durationUs} µs is shorter than the client's wait`);
  });

  it('cancelled while relaying: `canceled`, traffic counts the relay', async () => {
    hangDown = true;
    try {
      const before = down.requests.length;
      const start = Date.now();
      const started = performance.now();
      // hangs up once the downstream server has the relayed request
      await sendAndHangUp(sock, qmqpRequest(MESSAGE, SENDER, ['hang@example.org']), () =>
        waitFor(() => down.requests.length > before, 5_000, 'the relayed request'),
      );
      const record = decodeMailRecord(await receiver.next());
      assert.equal(down.requests.length, before + 1);
      const b = body(['hang@example.org']);
      checkRecord(
        record,
        {
          site: undefined,
          message: `from=<${SENDER}> to=<hang@example.org> canceled`,
          length: MESSAGE.length + 12,
          traffic: [b.length, b.length + 12],
        },
        start,
        performance.now() - started,
      );
    } finally {
      hangDown = false;
    }
  });

  it('sent exactly one datagram per mail', async () => {
    // a last mail as a marker: a datagram sent for an earlier mail arrives before its record
    assert.equal(await send(sock, qmqpRequest(MESSAGE, SENDER, ['discard@example.org'])), answer('Kdiscarded'));
    assert.equal(decodeMailRecord(await receiver.next()).message, `from=<${SENDER}> to=<discard@example.org> discarded`);
    assert.equal(receiver.datagrams.length, 9);
    assert.equal(daemon.stderr().includes('sendmsg() failed'), false, daemon.stderr());
  });
}

describe('Pond log over UDP/IPv4', () => scenarios(() => udpReceiver(4)));
describe('Pond log over UDP/IPv6', () => scenarios(() => udpReceiver(6)));
describe('Pond log over a Unix datagram socket', () => scenarios(async (dir) => unixReceiver(join(dir, 'pond.sock'))));
describe('Pond log over an abstract Unix datagram socket', () =>
  scenarios(async () => unixReceiver(`qrelay-pond-test-${randomBytes(6).toString('hex')}`, true)));

describe('Pond log: address forms, failures, shutdown', () => {
  for (const [level, pattern] of [
    ['quiet', () => /^sendmsg\(\) failed: Connection refused$/m],
    ['mail', (server: string) => new RegExp(`^\\[pid=\\d+ uid=\\d+ mail=[0-9a-f]{8}\\] sendmsg\\(\\) to log_server ${server} failed: Connection refused$`, 'm')],
  ] as const) {
    it(`a lost receiver prints the send error (QRELAY_LOG=${level}) and the answer is unchanged`, async () => {
      const dir = tempDir('qrelay-pond-');
      const receiver = unixReceiver(join(dir, 'pond.sock'));
      const daemon = await startDaemon({ config: CONFIG, dir, env: { LOG_SERVER: receiver.logServer, QRELAY_LOG: level } });
      try {
        await receiver.close();
        assert.equal(await send(join(dir, 'qrelay.sock'), qmqpRequest(MESSAGE, SENDER, ['discard@example.org'])), answer('Kdiscarded'));
        await waitFor(() => daemon.stderr().includes('failed: Connection refused'), 5_000, 'the send error');
        await daemon.waitForStderr(pattern(join(dir, 'pond.sock')));
      } finally {
        await daemon.stop();
        removeDir(dir);
      }
    });
  }

  it('an address object from log_resolve() works like a string', async () => {
    const receiver = await udpReceiver(4);
    const dir = tempDir('qrelay-pond-');
    const config = CONFIG.replace("log_server = os.getenv('LOG_SERVER')", "log_server = log_resolve(os.getenv('LOG_SERVER'))");
    const daemon = await startDaemon({ config, dir, env: { LOG_SERVER: receiver.logServer } });
    try {
      assert.equal(await send(join(dir, 'qrelay.sock'), qmqpRequest(MESSAGE, SENDER, ['discard@example.org'])), answer('Kdiscarded'));
      assert.equal(decodeMailRecord(await receiver.next()).message, `from=<${SENDER}> to=<discard@example.org> discarded`);
    } finally {
      await daemon.stop();
      await receiver.close();
      removeDir(dir);
    }
  });

  it('a string without a port uses the default port 5479', async (t) => {
    const receiver = createSocket('udp4');
    const bound = await new Promise<boolean>((resolve) => {
      receiver.once('error', () => resolve(false));
      receiver.bind(5479, '127.0.0.1', () => resolve(true));
    });
    if (!bound) {
      t.skip('port 5479 is in use on this machine');
      return;
    }
    const datagrams: Buffer[] = [];
    receiver.on('message', (msg) => datagrams.push(msg));
    const dir = tempDir('qrelay-pond-');
    const daemon = await startDaemon({ config: CONFIG, dir, env: { LOG_SERVER: '127.0.0.1' } });
    try {
      assert.equal(await send(join(dir, 'qrelay.sock'), qmqpRequest(MESSAGE, SENDER, ['discard@example.org'])), answer('Kdiscarded'));
      await waitFor(() => datagrams.length > 0, 5_000, 'a datagram on port 5479');
      assert.equal(decodeMailRecord(datagrams[0]!).message, `from=<${SENDER}> to=<discard@example.org> discarded`);
    } finally {
      await daemon.stop();
      await new Promise<void>((r) => receiver.close(() => r()));
      removeDir(dir);
    }
  });

  it('daemon shutdown while the handler runs sends `canceled` once the grace period is over', async () => {
    const dir = tempDir('qrelay-pond-');
    const receiver = unixReceiver(join(dir, 'pond.sock'));
    const daemon = await startDaemon({ config: CONFIG, dir, env: { LOG_SERVER: receiver.logServer, QRELAY_SHUTDOWN_GRACE_MS: '200' } });
    try {
      const client = exchange(join(dir, 'qrelay.sock'), qmqpRequest(MESSAGE, SENDER, ['sleep@example.org']));
      await waitFor(() => sleepers(daemon) === 1, 5_000, 'the handler to sleep');
      assert.equal(await daemon.stop(), 0);
      const record = decodeMailRecord(await receiver.next());
      assert.equal(record.message, `from=<${SENDER}> to=<sleep@example.org> canceled`);
      assert.equal((await client).response.length, 0);
    } finally {
      await daemon.stop();
      await receiver.close();
      removeDir(dir);
    }
  });

  async function startupFailure(logServer: string): Promise<{ code: number | null; stderr: string }> {
    const dir = tempDir('qrelay-pond-');
    const config = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)\nlog_server = ${logServer}\n`;
    const daemon = await startDaemon({ config, dir, noWait: true });
    try {
      const timer = setTimeout(() => daemon.child.kill('SIGKILL'), 15_000);
      const code = await daemon.exited;
      clearTimeout(timer);
      return { code, stderr: daemon.stderr() };
    } finally {
      await daemon.stop();
      removeDir(dir);
    }
  }

  it('an unreachable Unix address aborts startup with `Failed to connect to …`', async () => {
    const { code, stderr } = await startupFailure(luaString('/nonexistent-qrelay/pond.sock'));
    assert.equal(code, 1);
    assert.equal(stderr, 'Failed to connect to /nonexistent-qrelay/pond.sock: No such file or directory\n');
  });

  for (const [what, value] of [
    ['a table', '{}'],
    ['a boolean', 'true'],
    ['a function', 'print'],
  ] as const) {
    it(`a log_server of the wrong type (${what}) exits 1 with a message, no crash`, async () => {
      const { code, stderr } = await startupFailure(value);
      assert.equal(code, 1);
      assert.match(stderr, /^log_server must be .+\n$/);
    });
  }

  it('a malformed address string aborts startup with the parser message', async () => {
    const { code, stderr } = await startupFailure(luaString('[::1'));
    assert.equal(code, 1);
    assert.notEqual(stderr.trim(), '');
  });

  it('a number is a numeric host with the default port', async () => {
    // 5 → 0.0.0.5:5479: connecting a UDP socket there succeeds, so the daemon starts
    const dir = tempDir('qrelay-pond-');
    const config = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)\nlog_server = 5\n`;
    const daemon = await startDaemon({ config, dir });
    try {
      assert.equal(await send(join(dir, 'qrelay.sock'), qmqpRequest(MESSAGE, SENDER, ['discard@example.org'])), answer('Kdiscarded'));
    } finally {
      await daemon.stop();
      removeDir(dir);
    }
  });
});
