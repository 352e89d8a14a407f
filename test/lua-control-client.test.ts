// The `control_client` library (docs/libraries.md) run by the real
// engine, with real receivers: a Unix datagram socket on a path and on an
// abstract name (bound with the exact-length address), UDP on 127.0.0.1 and
// ::1, and a multicast group.
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  ControlCommand,
  ControlPayloadTooLong,
  MAX_CONTROL_PAYLOAD,
  controlPadding,
  encodeControlDatagram,
  encodeControlPacket,
} from '../src/protocol/control.js';
import { udpReceiver, unixReceiver, type DatagramReceiver } from './helpers/datagram-receiver.js';
import { luaString, runLua } from './helpers/run-lua.js';

/** How many more file descriptors this process has after `run`. */
async function fdGrowth(run: () => Promise<unknown>): Promise<number> {
  const before = readdirSync('/proc/self/fd').length;
  await run();
  return readdirSync('/proc/self/fd').length - before;
}

/** A UDP port on 127.0.0.1 with nothing bound to it (any more). */
async function closedUdpPort(): Promise<number> {
  const probe = createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', () => resolve()));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return port;
}

function hexBytes(spaced: string): string {
  return spaced.replace(/\s+/g, '');
}

/** Builder calls and the datagram they produce (docs/libraries.md). */
const VECTORS: [string, string][] = [
  ["c:build():fade_children('foo'):flush_http_cache('bar')", '63 04 61 01  00 03 00 08  66 6f 6f 00  00 03 00 0f  62 61 72 00'],
  ["c:build():cancel_job('workshop', '1234')", '63 04 61 01  00 0d 00 19  77 6f 72 6b 73 68 6f 70 00 31 32 33 34  00 00 00'],
  [
    "c:build():reject_client('192.0.2.1'):tarpit_client('192.0.2.1')",
    '63 04 61 01  00 09 00 17  31 39 32 2e 30 2e 32 2e 31 00 00 00  00 09 00 18  31 39 32 2e 30 2e 32 2e 31 00 00 00',
  ],
  [
    "c:build():disconnect_database('acct'):reset_limiter('acct'):discard_session('sess0'):flush_filter_cache(nil):terminate_children('tag')",
    '63 04 61 01  00 04 00 14  61 63 63 74  00 04 00 16  61 63 63 74  00 05 00 0e  73 65 73 73 30 00 00 00  00 00 00 0c  00 03 00 10  74 61 67 00',
  ],
  ["c:build():fade_children('a', 'bb')", '63 04 61 01  00 01 00 08  61 00 00 00  00 02 00 08  62 62 00 00'],
  ['c:build()', '63 04 61 01'],
];

describe('control_client', () => {
  let dir: string;
  let unix: DatagramReceiver;

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qrelay-control-'));
    unix = unixReceiver(join(dir, 'control.sock'));
  });
  after(async () => {
    await unix.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the builder datagrams byte for byte to a Unix datagram socket', async () => {
    const code = VECTORS.map(([build]) => `emit(c:send(${build}))`).join('\n');
    const lines = await runLua(`local c = assert(control_client:new(SOCKET))\n${code}`, { globals: { SOCKET: unix.logServer } });
    assert.deepEqual(lines, VECTORS.map(() => 'true'));
    for (const [build, bytes] of VECTORS) assert.equal((await unix.next()).toString('hex'), hexBytes(bytes), build);
  });

  it('encodes numbers with %.14g, other types as empty payloads, binary strings as they are', async () => {
    await runLua(`
      local c = assert(control_client:new(SOCKET))
      assert(c:send(c:build():fade_children(42, 0.1, 2^53):fade_children(true, {}, nil):cancel_job(7, 1.5)))
      assert(c:send(c:build():reject_client('\\0\\0\\14\\16' .. '192.0.2.1'):discard_session('\\255\\128')))
    `, { globals: { SOCKET: unix.logServer } });
    const numbers = hexBytes(`63 04 61 01  00 02 00 08 34 32 00 00  00 03 00 08 30 2e 31 00
      00 12 00 08 39 2e 30 30 37 31 39 39 32 35 34 37 34 31 65 2b 31 35 00 00
      00 00 00 08  00 00 00 08  00 00 00 08  00 05 00 19 37 00 31 2e 35 00 00 00`);
    assert.equal((await unix.next()).toString('hex'), numbers);
    const binary = hexBytes('63 04 61 01  00 0d 00 17 00 00 0e 10 31 39 32 2e 30 2e 32 2e 31 00 00 00  00 02 00 0e ff 80 00 00');
    assert.equal((await unix.next()).toString('hex'), binary);
  });

  it('sends a builder again and again; a payload of 65535 bytes still fits', async () => {
    const [ok] = await runLua(`
      local c = assert(control_client:new(SOCKET))
      local b = c:build():fade_children('x')
      assert(c:send(b))
      b:fade_children('y')
      assert(c:send(b))
      emit(c:send(c:build():flush_http_cache(string.rep('\\255', 65535))))
    `, { globals: { SOCKET: unix.logServer } });
    assert.equal(ok, 'true');
    assert.equal((await unix.next()).toString('hex'), '630461010001000878000000');
    assert.equal((await unix.next()).toString('hex'), '63046101000100087800000000010008' + '79000000');
    // the receiver reads at most 65536 bytes of the 65544-byte datagram
    const big = await unix.next();
    assert.equal(big.length, 65536);
    assert.equal(big.readUInt32BE(4), 0xffff000f);
    assert.ok(big.subarray(8).every((b) => b === 0xff));
  });

  it('reaches an abstract socket bound with the exact-length name', async () => {
    const name = `qrelay-test-control-${process.pid}`;
    const abstract = unixReceiver(name, true);
    try {
      await runLua(`local c = assert(control_client:new(ADDRESS)) assert(c:send(c:build():fade_children('abstract')))`, {
        globals: { ADDRESS: `@${name}` },
      });
      assert.equal((await abstract.next()).toString('hex'), '6304610100080008' + Buffer.from('abstract').toString('hex'));
    } finally {
      await abstract.close();
    }
  });

  for (const family of [4, 6] as const) {
    it(`sends over UDP to IPv${family} numeric addresses and address objects`, async () => {
      const udp = await udpReceiver(family);
      try {
        const lines = await runLua(`
          for _, target in ipairs({ TEXT, control_resolve(TEXT) }) do
            local c = assert(control_client:new(target))
            emit(tostring(target), c:send(c:build():terminate_children(tostring(target))))
          end
        `, { globals: { TEXT: udp.logServer } });
        assert.deepEqual(lines, [`${udp.logServer}\ttrue`, `${udp.logServer}\ttrue`]);
        for (let i = 0; i < 2; i++) {
          const datagram = await udp.next();
          assert.equal(datagram.readUInt16BE(6), 16);
          assert.equal(datagram.subarray(8, 8 + datagram.readUInt16BE(4)).toString(), udp.logServer);
        }
      } finally {
        await udp.close();
      }
    });
  }

  it('resolves host names, preferring IPv6 (docs/libraries.md)', async () => {
    const found = await lookup('localhost', { all: true });
    const preferred = found.find((a) => a.family === 6) ?? found[0]!;
    const udp = await udpReceiver(preferred.family === 6 ? 6 : 4);
    try {
      const port = udp.logServer.slice(udp.logServer.lastIndexOf(':') + 1);
      const [sent] = await runLua(`local c = assert(control_client:new('localhost:' .. PORT)) emit(c:send(c:build():fade_children('dns')))`, {
        globals: { PORT: port },
      });
      assert.equal(sent, 'true');
      assert.equal((await udp.next()).toString('hex'), '6304610100030008' + Buffer.from('dns').toString('hex') + '00');
    } finally {
      await udp.close();
    }
  });

  it('sends to a multicast group like to any other address (default port 5478 when none is given)', async () => {
    const group = '239.255.42.99';
    const receiver = createSocket({ type: 'udp4', reuseAddr: true });
    const received: Buffer[] = [];
    receiver.on('message', (m) => received.push(m));
    await new Promise<void>((resolve) => receiver.bind(0, () => resolve()));
    try {
      receiver.addMembership(group);
      const port = receiver.address().port;
      const lines = await runLua(`
        local c = assert(control_client:new(GROUP .. ':' .. PORT))
        emit(c:send(c:build():fade_children('multicast')))
        emit(control_client:new(GROUP) ~= nil)
      `, { globals: { GROUP: group, PORT: port } });
      assert.deepEqual(lines, ['true', 'true']);
      for (let i = 0; i < 200 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(received[0]?.toString('hex'), '6304610100090008' + Buffer.from('multicast').toString('hex') + '000000');
    } finally {
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });

  it('returns nil and a message for resolver and socket errors', async () => {
    const lines = await runLua(`
      emit(control_client:new('x.invalid'))
      emit(control_client:new(DIR .. '/missing.sock'))
      emit(control_client:new('127.0.0.1:qmqp'))
      emit(control_client:new('1.2.3.4 junk'))
    `, { globals: { DIR: dir } });
    assert.deepEqual(lines, [
      'nil\tFailed to resolve "x.invalid":"5478": Name or service not known',
      `nil\tFailed to connect to ${dir}/missing.sock: No such file or directory`,
      'nil\tFailed to resolve "127.0.0.1":"qmqp": Servname not supported for ai_socktype',
      'nil\tGarbage after host name',
    ]);
  });

  it('reports a failed send as nil and `send() failed: …`', async () => {
    // nothing listens on the port: the first datagram draws an ICMP error
    // that the next send() reports
    const port = await closedUdpPort();
    const lines = await runLua(`
      local c = assert(control_client:new('127.0.0.1:' .. PORT))
      for i = 1, 20 do
        local ok, err = c:send(c:build())
        if not ok then emit(ok, err) break end
      end
    `, { globals: { PORT: port } });
    assert.deepEqual(lines, ['nil\tsend() failed: Connection refused']);
  });

  it('raises errors for wrong argument counts and types', async () => {
    const lines = await runLua(`
      local c = assert(control_client:new(SOCKET))
      local b = c:build()
      emit(pcall_text(control_client.new, control_client))
      emit(pcall_text(control_client.new, control_client, 'a', 'b'))
      emit(pcall_text(control_client.new, control_client, nil))
      emit(pcall_text(control_client.new, control_client, {}))
      emit(pcall_text(c.build, c, 1, 2))
      emit(pcall_text(c.build, c, 'ignored') ~= 'ok' and 'error' or 'ok')
      emit(pcall_text(c.send, c))
      emit(pcall_text(c.send, c, b, b))
      emit(pcall_text(c.send, c, 42))
      emit(pcall_text(c.send, c, c))
      emit(pcall_text(b.fade_children, b))
      emit(pcall_text(b.cancel_job, b, 'p'))
      emit(pcall_text(b.cancel_job, b, 'p', 'j', 'x'))
      emit(pcall_text(b.cancel_job, b, nil, 'j'))
      emit(pcall_text(b.cancel_job, b, 'p', {}))
      emit(pcall_text(b.fade_children, 'not a builder', 'x'))
      emit(pcall_text(c.send, b, b))
      emit(pcall_text(b.fade_children, b, string.rep('x', 65536)))
      emit(pcall_text(b.cancel_job, b, string.rep('x', 65530), 'abcde'))
      emit(pcall_text(function() b:reset_limiter() end))
      emit(c:send(b))
    `, { globals: { SOCKET: unix.logServer } });
    assert.deepEqual(lines.slice(0, -2), [
      'Not enough parameters',
      'Too many parameters',
      "bad argument #1 to 'new' (SocketAddress expected, got nil)",
      "bad argument #1 to 'new' (SocketAddress expected, got table)",
      'Too many parameters',
      'ok',
      'Not enough parameters',
      'Too many parameters',
      "bad argument #1 to 'send' (control_builder expected, got number)",
      "bad argument #1 to 'send' (control_builder expected, got userdata)",
      'Not enough parameters',
      'Not enough parameters',
      'Too many parameters',
      "bad argument #1 to 'cancel_job' (string expected, got nil)",
      "bad argument #2 to 'cancel_job' (string expected, got table)",
      "bad argument #1 to 'fade_children' (control_builder expected, got string)",
      "bad argument #1 to 'send' (control_client expected, got userdata)",
      "bad argument #1 to 'fade_children' (Payload is too long)",
      "bad argument #2 to 'cancel_job' (Payload is too long)",
    ]);
    assert.match(lines.at(-2)!, /config\.lua:\d+: Not enough parameters$/);
    // the failed calls added nothing
    assert.equal(lines.at(-1), 'true');
    assert.equal((await unix.next()).toString('hex'), '63046101');
  });

  it('accepts a string with a number in it', async () => {
    await runLua(`assert(pcall(control_client.new, control_client, 12345))`);
  });

  it('closes the socket when the client is collected', async () => {
    const kept = await fdGrowth(() => runLua(`KEPT = {} for i = 1, 50 do KEPT[i] = assert(control_client:new(SOCKET)) end`, { globals: { SOCKET: unix.logServer } }));
    const collected = await fdGrowth(() =>
      runLua(`for i = 1, 50 do assert(control_client:new(SOCKET)) end collectgarbage() collectgarbage()`, { globals: { SOCKET: unix.logServer } }),
    );
    assert.ok(kept >= 50, `kept clients hold their sockets (${kept})`);
    assert.ok(collected < 10, `collected clients closed their sockets (${collected})`);
  });

  it('quotes Lua strings for the tests correctly', () => {
    assert.equal(luaString('a"\\\x00\xff'), '"a\\034\\092\\000\\255"');
  });
});

describe('control datagram encoder', () => {
  it('pads payloads to a multiple of four (docs/libraries.md)', () => {
    assert.deepEqual([0, 1, 2, 3, 4, 5].map(controlPadding), [0, 3, 2, 1, 0, 3]);
    const packet = encodeControlPacket(ControlCommand.FADE_CHILDREN, Buffer.alloc(MAX_CONTROL_PAYLOAD, 0xff));
    assert.equal(packet.length, 4 + 65535 + 1);
    assert.equal(packet.readUInt32BE(0), 0xffff0008);
    assert.equal(packet.at(-1), 0);
    assert.equal(encodeControlDatagram([]).toString('hex'), '63046101');
  });

  it('refuses payloads the 16-bit length cannot describe', () => {
    assert.throws(() => encodeControlPacket(ControlCommand.NOP, Buffer.alloc(65536)), ControlPayloadTooLong);
  });
});
