// The gathered write (src/streams/write-pieces.ts), straight to the
// socket's libuv handle (`direct`, as the connect action writes) and
// through the Writable: the same bytes in the same order, one outcome,
// the same errors; a direct write falls back to the Writable when the
// socket already has something queued.
import assert from 'node:assert/strict';
import { createServer, Socket, type Server } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { systemErrorText } from '../src/native/linux.js';
import { writeGathered, type WriteOutcome } from '../src/streams/write-pieces.js';
import { removeDir, tempDir } from './helpers/daemon.js';

/** `count` pieces of `size` bytes, each filled with its own letter. */
function pieces(count: number, size: number): Buffer[] {
  return Array.from({ length: count }, (_, i) => Buffer.alloc(size, 0x61 + (i % 26)));
}

describe('writeGathered', () => {
  let dir: string;
  let server: Server;
  let path: string;
  /** The server side of the next connection. */
  let accepted: (socket: Socket) => void = () => {};
  const peers: Socket[] = [];

  before(async () => {
    dir = tempDir('qrelay-write-pieces-');
    path = join(dir, 'w.sock');
    server = createServer({ allowHalfOpen: true }, (socket) => {
      socket.on('error', () => {});
      peers.push(socket);
      accepted(socket);
    });
    await new Promise<void>((r) => server.listen(path, () => r()));
  });
  after(async () => {
    for (const peer of peers) peer.destroy();
    await new Promise((r) => server.close(r));
    removeDir(dir);
  });

  /** A connected client socket and the server's side of it. */
  async function pair(): Promise<{ client: Socket; peer: Socket }> {
    const peer = new Promise<Socket>((r) => (accepted = r));
    const client = new Socket({ allowHalfOpen: true });
    client.on('error', () => {});
    await new Promise<void>((r) => client.connect(path, r));
    return { client, peer: await peer };
  }

  /** Everything `peer` receives until its end. */
  function everything(peer: Socket): Promise<Buffer> {
    const chunks: Buffer[] = [];
    peer.on('data', (d: Buffer) => chunks.push(d));
    return new Promise((r) => peer.on('end', () => r(Buffer.concat(chunks))));
  }

  function write(client: Socket, data: Buffer[], direct: boolean): Promise<WriteOutcome[]> {
    const outcomes: WriteOutcome[] = [];
    return new Promise((resolve) => {
      writeGathered(client, data, 2_000, {
        written(outcome) {
          outcomes.push(outcome);
          // one more turn: a second report would show
          setTimeout(() => resolve(outcomes), 20);
        },
      }, direct);
    });
  }

  for (const direct of [true, false]) {
    it(`writes every piece in order and reports once (${direct ? 'direct' : 'through the Writable'})`, async () => {
      const { client, peer } = await pair();
      const received = everything(peer);
      // 4 MiB: more than the kernel takes at once, libuv goes on writing
      const data = [Buffer.from('head'), ...pieces(64, 64 * 1024), Buffer.from(',')];
      const done = write(client, data, direct);
      // a direct write is libuv's alone: the Writable holds nothing
      const handle = (client as unknown as { _handle: { writeQueueSize: number } })._handle;
      assert.ok(handle.writeQueueSize > 0);
      assert.equal(client.writableLength, direct ? 0 : 4 + 64 * 64 * 1024 + 1);
      assert.deepEqual(await done, [undefined]);
      client.end();
      assert.ok((await received).equals(Buffer.concat(data)));
      client.destroy();
    });

    it(`reports a write to a socket whose peer is gone as the system error (${direct ? 'direct' : 'through the Writable'})`, async () => {
      const { client, peer } = await pair();
      const ended = new Promise((r) => client.once('end', r));
      peer.destroy();
      await ended;
      const outcomes = await write(client, pieces(3, 100), direct);
      assert.equal(outcomes.length, 1);
      const error = outcomes[0];
      assert.ok(error instanceof Error);
      assert.equal((error as NodeJS.ErrnoException).code, 'EPIPE');
      assert.equal(systemErrorText(error), 'Broken pipe');
      client.destroy();
    });
  }

  it('writes directly only to an idle socket: what is queued first stays first', async () => {
    const { client, peer } = await pair();
    const received = everything(peer);
    client.cork();
    client.write('queued first,');
    const data = pieces(4, 10);
    const done = write(client, data, true);
    client.uncork();
    assert.deepEqual(await done, [undefined]);
    client.end();
    assert.equal((await received).toString('latin1'), `queued first,${Buffer.concat(data).toString('latin1')}`);
    client.destroy();
  });

  it('reports nothing once unsubscribed, and a socket destroyed in the middle of a direct write throws nothing', async () => {
    const { client, peer } = await pair();
    peer.pause();
    const outcomes: WriteOutcome[] = [];
    const w = writeGathered(client, pieces(128, 64 * 1024), 2_000, { written: (o) => outcomes.push(o) }, true);
    w.unsubscribe();
    client.destroy();
    await new Promise((r) => client.once('close', r));
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(outcomes, []);
    peer.destroy();
  });
});
