// Requests are read into shared slabs that are reused from mail to mail:
// the chunks of one connection never overlap another's (or the window the
// next read goes to), what a connection holds grows with what it sent,
// and the relayed bytes are exactly the received ones, also when slabs
// are reused under concurrent large mails.  A large request arrives in
// few reads: windows are never cut short at a slab's end, and reads that
// continue each other in memory become one piece of the request.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acceptConnection } from '../src/native/linux.js';
import { receiveRequest } from '../src/operators/receive-request.js';
import type { NetstringReadResult } from '../src/protocol/netstring-reader.js';
import type { ClientConnection } from '../src/streams/client-pipe.js';
import { acceptedClient } from '../src/streams/client-socket.js';
import { bindListeningFd, closeListener } from '../src/streams/listener.js';
import { ReceiveBudget } from '../src/streams/receive-budget.js';
import { ReceiveArea } from '../src/streams/receive-pool.js';
import { luaString, removeDir, startDaemon, tempDir, type RunningDaemon } from './helpers/daemon.js';
import { downstreamServer, exchange, qmqpRequest, type DownstreamServer } from './helpers/qmqp.js';

/** Fills the next `n` bytes of `area` as a read would, with `fill`. */
function read(area: ReceiveArea, n: number, fill: number): Buffer {
  const window = area.next();
  assert.ok(window.length >= n, `window of ${window.length} for a read of ${n}`);
  window.fill(fill, 0, n);
  return area.filled(n);
}

const range = (b: Buffer): [number, number] => [b.byteOffset, b.byteOffset + b.length];
const overlaps = (a: Buffer, b: Buffer): boolean => a.buffer === b.buffer && range(a)[0] < range(b)[1] && range(b)[0] < range(a)[1];

describe('receive pool', () => {
  it('gives each read its own bytes: chunks of concurrent connections never overlap each other or a pending window', () => {
    const areas = Array.from({ length: 40 }, () => new ReceiveArea());
    const chunks: Buffer[][] = areas.map(() => []);
    for (let round = 0; round < 30; round++) {
      areas.forEach((area, i) => chunks[i]!.push(read(area, Math.min(area.next().length, 1 + ((round * 7919 + i * 104729) % 20000)), (i * 31 + round) & 0xff)));
    }
    areas.forEach((area, i) => {
      chunks[i]!.forEach((chunk, round) => assert.ok(chunk.every((b) => b === ((i * 31 + round) & 0xff)), `area ${i} chunk ${round} was overwritten`));
      for (let j = 0; j < areas.length; j++) {
        if (j !== i) for (const other of chunks[j]!) assert.ok(!overlaps(area.next(), other), 'a window overlaps a chunk of another connection');
      }
    });
    for (const area of areas) area.release();
  });

  it('holds about what the connection sent, not more: a small request a small window, a large one windows that grow', () => {
    const small = new ReceiveArea();
    read(small, 2103, 1);
    assert.ok(small.reservedBytes <= 16 * 1024, `small request holds ${small.reservedBytes}`);
    const large = new ReceiveArea();
    let received = 0;
    let reads = 0;
    while (received < 1 << 20) {
      const n = Math.min(large.next().length, (1 << 20) - received);
      read(large, n, 2);
      received += n;
      reads++;
      assert.ok(large.reservedBytes <= Math.max(32 * 1024, 2 * received + 16 * 1024), `${large.reservedBytes} held after ${received} received`);
    }
    assert.ok(reads <= 16, `1 MiB took ${reads} reads`);
    small.release();
    large.release();
  });

  it('reads a large request in reads as large as what arrived, once the windows have grown', () => {
    // a fast client: every read returns what its send buffer held (here 200 000 bytes), or less if the window is smaller
    const area = new ReceiveArea();
    const total = (1 << 20) + 100;
    area.expectEnd(total);
    let received = 0;
    const sizes: number[] = [];
    while (received < total) {
      const n = Math.min(area.next().length, 200_000, total - received);
      read(area, n, 7);
      received += n;
      sizes.push(n);
      assert.ok(area.reservedBytes <= 2 * received + 16 * 1024, `${area.reservedBytes} held after ${received} received`);
    }
    // 16 + 32 + 64 + 128 KiB while growing, then one read for each 200 000 bytes
    assert.ok(sizes.length <= 9, `1 MiB took ${sizes.length} reads: ${sizes.join(' ')}`);
    assert.ok(sizes.slice(4, -1).every((n) => n === 200_000), `reads after the first 240 KiB were split: ${sizes.join(' ')}`);
    area.release();
  });

  it('never cuts a window short where a slab ends: a window that does not fit comes from another slab', () => {
    // other connections have carved the slab being carved, some more, some less
    const others: ReceiveArea[] = [];
    for (let i = 0; i < 7; i++) {
      others.push(new ReceiveArea());
      const large = new ReceiveArea();
      const windows: number[] = [];
      // a client faster than the reads: each fills its window (752 KiB in all, across slab ends)
      for (let k = 0; k < 6; k++) windows.push(read(large, large.next().length, 8).length);
      assert.deepEqual(windows, [16, 32, 64, 128, 256, 256].map((n) => n * 1024));
      others.push(large);
    }
    for (const area of others) area.release();
  });

  it('takes windows no larger than what the announced request still needs, and an announcement does not enlarge them', () => {
    const area = new ReceiveArea();
    read(area, 16 * 1024, 1);
    // a request of 16 MiB announced after 16 KiB: the next window still grows only with what was received
    area.expectEnd(16 << 20);
    assert.ok(area.next().length <= 32 * 1024, `a window of ${area.next().length} after 16 KiB received`);
    assert.ok(area.reservedBytes <= 48 * 1024, `${area.reservedBytes} held after 16 KiB received`);
    area.release();
    // a request that needs 20 000 bytes more: the window is one byte larger than that, no more
    const short = new ReceiveArea();
    read(short, 16 * 1024, 1);
    read(short, short.next().length, 1);
    short.expectEnd(3 * 16 * 1024 + 20_000);
    assert.equal(short.next().length, 20_001);
    short.release();
  });

  it('holds a bounded number of slabs for a client whose every read is one byte', () => {
    const area = new ReceiveArea();
    area.expectEnd(1 << 20);
    const chunks: Buffer[] = [];
    for (let i = 1; i <= 50_000; i++) {
      chunks.push(read(area, 1, i & 0xff));
      assert.ok(area.reservedBytes <= 2 * i + 16 * 1024, `${area.reservedBytes} held after ${i} bytes`);
    }
    assert.ok(area.slabCount <= 3, `${area.slabCount} slabs held for 50 000 bytes`);
    chunks.forEach((c, i) => assert.equal(c[0], (i + 1) & 0xff, `byte ${i} was overwritten`));
    area.release();
  });

  it('keeps no more after the request is complete: later reads reuse the last window', () => {
    const area = new ReceiveArea();
    const request = read(area, 5000, 3);
    area.stopGrowing();
    const held = area.reservedBytes;
    for (let i = 0; i < 100; i++) read(area, area.next().length, 4);
    assert.equal(area.reservedBytes, held);
    assert.ok(request.every((b) => b === 3), 'the request was overwritten by later reads');
    area.release();
  });

  it('reuses released slabs for later connections', () => {
    const first = new ReceiveArea();
    const memory = read(first, 100, 5).buffer;
    first.release();
    // the slab being carved stays in use; later areas carve on from it or a freed one
    const seen = new Set<ArrayBufferLike>();
    for (let i = 0; i < 200; i++) {
      const area = new ReceiveArea();
      seen.add(read(area, area.next().length, 6).buffer);
      area.release();
    }
    assert.ok(seen.has(memory), 'the released slab was not reused');
    assert.ok(seen.size <= 2, `${seen.size} slabs for one connection at a time`);
  });
});

/** Calls `tap` with each chunk `socket` reads, before its reader (set already) hears it. */
function onEachRead(socket: ClientConnection, tap: (chunk: Buffer) => void): void {
  const reader = socket.reader!;
  socket.reader = {
    data: (chunk) => {
      tap(chunk);
      reader.data(chunk);
    },
    end: () => reader.end(),
    failed: (error) => reader.failed(error),
  };
}

describe('reading a request through a real socket', () => {
  const dir = tempDir();
  const path = join(dir, 'listen.sock');
  let listener: number;

  before(() => {
    listener = bindListeningFd({ kind: 'path', path });
  });
  after(() => {
    closeListener({ fd: listener, name: 'test', ownFile: undefined, handler: 0, maxSize: 0 });
    removeDir(dir);
  });

  /** A client connected to the listener, and the daemon's side of it (reading into the receive pool). */
  async function connection(): Promise<{ client: Socket; socket: ClientConnection }> {
    const client = connect({ path });
    await new Promise<void>((resolve) => client.once('connect', resolve));
    let fd: number | undefined;
    for (let i = 0; i < 100 && fd === undefined; i++) {
      fd = acceptConnection(listener);
      if (fd === undefined) await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.ok(fd !== undefined, 'no connection to accept');
    return { client, socket: acceptedClient(fd) };
  }

  /** Sends `request` from a client of the default send buffer; resolves with the accepted side's reads (one 'data' event each) and the result. */
  async function receive(request: Buffer): Promise<{ reads: number[]; result: NetstringReadResult | undefined }> {
    const { client, socket } = await connection();
    const reads: number[] = [];
    const budget = new ReceiveBudget(1 << 30);
    const result = await new Promise<NetstringReadResult | undefined>((resolve, reject) => {
      let value: NetstringReadResult | undefined;
      receiveRequest(socket, budget.open(socket), 5_000, 16 << 20).subscribe({ next: (v) => (value = v), error: reject, complete: () => resolve(value) });
      onEachRead(socket, (chunk) => reads.push(chunk.length));
      client.write(request);
    });
    client.destroy();
    socket.destroy();
    return { reads, result };
  }

  it('reads a 1 MiB request in few reads, each of about what the client could queue', async () => {
    const message = randomBytes(1 << 20);
    const { reads, result } = await receive(qmqpRequest(message, 'big@example.org', ['r@example.org']));
    assert.equal(result?.kind, 'complete');
    if (result?.kind !== 'complete') return;
    assert.ok(result.payload.length > message.length);
    // before windows stopped being cut short at slab ends: 13 to 15
    assert.ok(reads.length <= 9, `${reads.length} reads: ${reads.join(' ')}`);
    // reads that continue each other in memory (a connection's windows while they grow) are one piece
    const pieces = result.payload.pieces;
    assert.ok(pieces.length < reads.length, `${pieces.length} pieces from ${reads.length} reads`);
    for (let i = 1; i < pieces.length; i++) {
      const [a, b] = [pieces[i - 1]!, pieces[i]!];
      assert.ok(!(a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset), `pieces ${i - 1} and ${i} continue each other`);
    }
  });

  it('holds no more than about twice what a client sent that announced far more', async () => {
    // announces 16 MiB, sends 100 bytes of it, then waits
    const { client, socket } = await connection();
    const budget = new ReceiveBudget(1 << 30);
    const sub = receiveRequest(socket, budget.open(socket), 5_000, 16 << 20).subscribe();
    const got = new Promise<void>((resolve) => onEachRead(socket, () => setImmediate(resolve)));
    client.write(Buffer.concat([Buffer.from(`${16 << 20}:`), Buffer.alloc(100, 0x41)]));
    await got;
    assert.ok(socket.area.reservedBytes <= 2 * 111 + 16 * 1024, `${socket.area.reservedBytes} held after 111 bytes`);
    sub.unsubscribe();
    client.destroy();
    socket.destroy();
  });
});

describe('relaying from the receive pool', () => {
  let daemon: RunningDaemon;
  let downstream: DownstreamServer;
  let socket: string;
  const dir = tempDir();

  before(async () => {
    downstream = await downstreamServer(join(dir, 'down.sock'), () => Buffer.from('3:Kok,'));
    daemon = await startDaemon({
      dir,
      config: `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:connect(${luaString(downstream.path)}) end)\n`,
      readyPath: 'qrelay.sock',
    });
    socket = join(dir, 'qrelay.sock');
  });
  after(async () => {
    await daemon.stop();
    await downstream.close();
    removeDir(dir);
  });

  /** The relayed request that carries `sender`. */
  const relayedFor = (sender: string): Buffer | undefined => downstream.requests.find((q) => q.includes(Buffer.from(sender)));

  it('relays concurrent mails of random bytes exactly, round after round, while slabs are reused', async () => {
    const sizes = [1, 700, 2048, 16 * 1024 - 40, 16 * 1024 + 3, 100_000, 300_000, (1 << 20) + 17];
    for (let round = 0; round < 3; round++) {
      const messages = sizes.map((size) => randomBytes(size));
      const requests = messages.map((m, i) => qmqpRequest(m, `s${round}x${i}@example.org`, ['r@example.org']));
      // each sent in uneven pieces, so reads end anywhere
      const answers = await Promise.all(
        requests.map((r, i) => exchange(socket, [r.subarray(0, 1 + i), r.subarray(1 + i, r.length >> 1), r.subarray(r.length >> 1)], { pauseMs: 2 })),
      );
      for (const a of answers) assert.equal(a.response.toString(), '3:Kok,');
      messages.forEach((message, i) => {
        const relayed = relayedFor(`s${round}x${i}@example.org`);
        assert.ok(relayed !== undefined, `mail ${i} of round ${round} was not relayed`);
        assert.ok(relayed.includes(message), `mail ${i} of round ${round} (${message.length} bytes) arrived changed`);
      });
    }
  });

  it('keeps the first bytes of a slow mail intact while many other mails come and go', async () => {
    const slowMessage = randomBytes(200_000);
    const slowRequest = qmqpRequest(slowMessage, 'slow@example.org', ['r@example.org']);
    const pieces = Array.from({ length: 10 }, (_, i) => slowRequest.subarray((i * slowRequest.length) / 10, ((i + 1) * slowRequest.length) / 10));
    const slow = exchange(socket, pieces, { pauseMs: 40 });
    const fast: Buffer[] = [];
    for (let batch = 0; batch < 8; batch++) {
      const messages = Array.from({ length: 6 }, () => randomBytes(60_000));
      await Promise.all(messages.map((m, i) => exchange(socket, qmqpRequest(m, `f${batch}x${i}@example.org`, ['r@example.org']))));
      fast.push(...messages);
    }
    assert.equal((await slow).response.toString(), '3:Kok,');
    assert.ok(relayedFor('slow@example.org')?.includes(slowMessage), 'the slow mail arrived changed');
    fast.forEach((m, k) => assert.ok(relayedFor(`f${Math.floor(k / 6)}x${k % 6}@example.org`)?.includes(m), `fast mail ${k} arrived changed`));
  });
});
