// ClientPipe: an accepted client connection driven through its libuv
// handle alone.  It reads at once into the windows of its receive area,
// hears the client's end and a reset (then closed), stops and starts
// reading for the receive budget, writes the answer (at once, or later to
// a client that does not read), shuts the write side down after a
// refused client's answer while still reading, and gives its receive
// windows back only once its handle has closed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeFd } from '../src/native/linux.js';
import { ClientPipe, type ClientReader } from '../src/streams/client-pipe.js';
import { waitFor } from './helpers/daemon.js';
import { testListener } from './helpers/test-listener.js';

/** What a reader heard, in order (the chunks kept as the views they are). */
class Heard implements ClientReader {
  readonly events: string[] = [];
  readonly chunks: Buffer[] = [];

  data(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.events.push(`data ${chunk.toString('latin1')}`);
  }
  end(): void {
    this.events.push('end');
  }
  failed(error: NodeJS.ErrnoException): void {
    this.events.push(`error ${error.code} ${error.syscall} ${error.errno}`);
  }
  /** Every byte heard so far. */
  get text(): string {
    return this.chunks.map((c) => c.toString('latin1')).join('');
  }
}

/** A peer's bytes, its end, and whether it closed. */
class Peer {
  readonly received: Buffer[] = [];
  ended = false;
  closed = false;

  constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => this.received.push(chunk));
    socket.on('end', () => (this.ended = true));
    socket.on('close', () => (this.closed = true));
    socket.on('error', () => {});
  }

  get text(): string {
    return Buffer.concat(this.received).toString('latin1');
  }
}

describe('ClientPipe', () => {
  const listener = testListener('qrelay-client-pipe-');

  /** A client connected to the listener, and the daemon's side as a ClientPipe with `heard` as its reader. */
  async function accepted(options: { allowHalfOpen?: boolean } = {}): Promise<{ pipe: ClientPipe; peer: Peer; heard: Heard; fd: number }> {
    const socket = connect({ path: listener.path, allowHalfOpen: options.allowHalfOpen ?? true });
    const peer = new Peer(socket);
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    const fd = await listener.accept();
    const pipe = ClientPipe.open(fd);
    assert.ok(pipe !== undefined, 'Node 20 and 24 have the bindings');
    const heard = new Heard();
    pipe.reader = heard;
    return { pipe, peer, heard, fd };
  }

  it('reads into the windows of its receive area and hears the client half-close', async () => {
    const { pipe, peer, heard, fd } = await accepted();
    assert.equal(pipe.fd, fd);
    peer.socket.write('12:hello');
    await waitFor(() => heard.text === '12:hello', 5_000, 'the first bytes');
    // the chunk is a view of the window it was read into, and the next window continues it
    const first = heard.chunks[0]!;
    const next = pipe.area.next();
    assert.equal(next.buffer, first.buffer, 'the next read goes to the same slab');
    assert.equal(next.byteOffset, first.byteOffset + first.length, 'right after the bytes read');
    peer.socket.end(' world,');
    await waitFor(() => heard.events.includes('end'), 5_000, 'the end');
    assert.equal(heard.text, '12:hello world,');
    assert.equal(heard.events.at(-1), 'end');
    assert.equal(pipe.readableEnded, true);
    assert.equal(pipe.destroyed, false);
    assert.equal(pipe.writable, true, 'half-closed by the client: the answer can still be written');
    pipe.destroy();
    await waitFor(() => peer.closed, 5_000, 'the peer to see the close');
  });

  it('reports a reset as the read error ECONNRESET and is closed by it', async () => {
    // a client on a bare descriptor that closes with bytes it never read: the connection is reset
    const clientFd = listener.connect();
    const pipe = ClientPipe.open(await listener.accept())!;
    const heard = new Heard();
    pipe.reader = heard;
    assert.equal(pipe.write('unread'), 'written');
    closeFd(clientFd);
    await waitFor(() => heard.events.length > 0, 5_000, 'the reset');
    assert.deepEqual(heard.events, ['error ECONNRESET read -104']);
    assert.equal(pipe.destroyed, true);
    assert.equal(pipe.fd, undefined);
  });

  it('reads nothing while paused and everything once resumed', async () => {
    const paused = await accepted();
    const other = await accepted();
    paused.pipe.pause();
    paused.peer.socket.write('held');
    other.peer.socket.write('flows');
    // both became readable together: the one still reading hears its bytes, the paused one does not
    await waitFor(() => other.heard.text === 'flows', 5_000, 'the other connection');
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(paused.heard.events, []);
    paused.pipe.resume();
    await waitFor(() => paused.heard.text === 'held', 5_000, 'the bytes after resume');
    // pause and resume twice are the same as once
    paused.pipe.pause();
    paused.pipe.pause();
    paused.pipe.resume();
    paused.pipe.resume();
    paused.peer.socket.end('!');
    await waitFor(() => paused.heard.events.includes('end'), 5_000, 'the end');
    assert.equal(paused.heard.text, 'held!');
    // resuming after the end reads nothing more
    paused.pipe.resume();
    for (const c of [paused, other]) {
      c.pipe.destroy();
      c.peer.socket.destroy();
    }
  });

  it('writes an answer the kernel takes at once within the call, and the client reads it before the end', async () => {
    const { pipe, peer } = await accepted();
    assert.equal(pipe.write('3:Kok,'), 'written');
    pipe.destroy();
    await waitFor(() => peer.ended, 5_000, 'the end at the client');
    assert.equal(peer.text, '3:Kok,');
  });

  it('reports an answer the client does not read as pending and tells its listener once it is written', async () => {
    const { pipe, peer } = await accepted();
    peer.socket.pause();
    const big = 'x'.repeat(4 << 20);
    assert.equal(pipe.write(big), 'pending');
    const outcome = new Promise<NodeJS.ErrnoException | undefined>((resolve) => pipe.afterWrite({ written: resolve }));
    peer.socket.resume();
    assert.equal(await outcome, undefined);
    pipe.destroy();
    await waitFor(() => peer.ended, 10_000, 'the end at the client');
    assert.equal(peer.text.length, big.length);
  });

  it('reports a pending answer as written when the connection is destroyed under it', async () => {
    const { pipe, peer } = await accepted();
    peer.socket.pause();
    assert.equal(pipe.write('y'.repeat(4 << 20)), 'pending');
    const outcome = new Promise<NodeJS.ErrnoException | undefined>((resolve) => pipe.afterWrite({ written: resolve }));
    pipe.destroy();
    assert.equal(await outcome, undefined);
    peer.socket.destroy();
  });

  it('returns the error of a write that fails at once (the client is gone)', async () => {
    const { pipe, peer, heard } = await accepted();
    peer.socket.destroy();
    await waitFor(() => heard.events.length > 0, 5_000, 'the end');
    const outcome = pipe.write('3:Kok,');
    assert.ok(outcome instanceof Error, String(outcome));
    assert.equal(outcome.code, 'EPIPE');
    assert.equal(outcome.syscall, 'write');
    pipe.destroy();
  });

  it('end(): writes, shuts its write side down, and still hears what the client sends', async () => {
    const { pipe, peer, heard } = await accepted();
    pipe.end('5:Zfull,');
    assert.equal(pipe.writable, false);
    await waitFor(() => peer.ended, 5_000, 'the end at the client');
    assert.equal(peer.text, '5:Zfull,');
    peer.socket.end('late bytes');
    await waitFor(() => heard.events.includes('end'), 5_000, 'the client end');
    assert.deepEqual(heard.events, ['data late bytes', 'end']);
    pipe.destroy();
  });

  it('end(): a write that fails closes the connection and tells the reader', async () => {
    const { pipe, peer, heard } = await accepted();
    peer.socket.destroy();
    await waitFor(() => heard.events.length > 0, 5_000, 'the end');
    pipe.end('5:Zfull,');
    assert.equal(pipe.destroyed, true);
    assert.deepEqual(heard.events, ['end', 'error EPIPE write -32']);
  });

  it('destroy(): closes once, hears nothing after, and gives the receive windows back only when the handle has closed', async () => {
    const { pipe, peer, heard } = await accepted();
    peer.socket.write('abc');
    await waitFor(() => heard.text === 'abc', 5_000, 'the bytes');
    assert.ok(pipe.area.slabCount > 0);
    pipe.destroy();
    pipe.destroy();
    assert.equal(pipe.destroyed, true);
    assert.equal(pipe.writable, false);
    // a late end() writes nothing and tells nobody
    pipe.end('5:Zfull,');
    assert.equal(pipe.area.slabCount, 1, 'still held: the handle closes on the next turn of the loop');
    await waitFor(() => pipe.area.slabCount === 0, 5_000, 'the windows to go back');
    peer.socket.end('more');
    await waitFor(() => peer.closed, 5_000, 'the client to see the close');
    assert.deepEqual(heard.events, ['data abc']);
    assert.equal(peer.text, '');
  });

  it('is not offered where Node lacks the bindings: the accepted connection is then a net.Socket that reads and answers', () => {
    // a child in which process.binding knows neither pipe_wrap nor
    // stream_wrap (as a Node release that drops them would)
    const code = `
      const real = process.binding.bind(process);
      process.binding = (name) => { if (name === 'pipe_wrap' || name === 'stream_wrap') throw new Error('No such module: ' + name); return real(name); };
      const { connect } = await import('node:net');
      const { ClientPipe } = await import(${JSON.stringify(new URL('../src/streams/client-pipe.ts', import.meta.url).href)});
      const { acceptedClient } = await import(${JSON.stringify(new URL('../src/streams/client-socket.ts', import.meta.url).href)});
      const { acceptConnection, closeFd, listenUnix } = await import(${JSON.stringify(new URL('../src/native/linux.ts', import.meta.url).href)});
      const path = process.argv[1];
      const listenFd = listenUnix(Buffer.from(path), false, 8, path);
      const peer = connect({ path, allowHalfOpen: true });
      await new Promise((r) => peer.once('connect', r));
      let fd;
      while ((fd = acceptConnection(listenFd)) === undefined) await new Promise((r) => setTimeout(r, 10));
      const raw = ClientPipe.open(fd);
      const client = acceptedClient(fd);
      const got = [];
      const ended = new Promise((resolve) => { client.reader = { data: (c) => got.push(c.toString('latin1')), end: resolve, failed: resolve }; });
      peer.end('2:hi,');
      await ended;
      const write = client.write('3:Kok,');
      client.destroy();
      const answer = await new Promise((resolve) => { const chunks = []; peer.on('data', (c) => chunks.push(c)); peer.on('close', () => resolve(Buffer.concat(chunks).toString('latin1'))); });
      closeFd(listenFd);
      console.log(JSON.stringify({ raw: raw === undefined ? 'none' : 'made', got: got.join(''), write, answer }));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code, join(listener.dir, 'fallback.sock')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { raw: 'none', got: '2:hi,', write: 'written', answer: '3:Kok,' });
  });
});
