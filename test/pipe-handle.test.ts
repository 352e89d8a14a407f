// Accepted connections get their libuv Pipe handle directly (no
// uv_guess_handle per connection): the Socket made from it reads, writes
// and closes its descriptor like one made from `{ fd }`.
import assert from 'node:assert/strict';
import { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { closeFd } from '../src/native/linux.js';
import { directPipeHandles, unixStreamOptions } from '../src/streams/pipe-handle.js';
import { testListener } from './helpers/test-listener.js';

describe('pipe handles for accepted connections', () => {
  const listener = testListener('qrelay-pipe-handle-');

  /** A connected pair: the accepted descriptor and the client's Socket. */
  async function acceptedPair(): Promise<{ fd: number; peer: Socket }> {
    const peer = new Socket({ fd: listener.connect(), readable: true, writable: true, allowHalfOpen: true });
    return { fd: await listener.accept(), peer };
  }

  it('is used on the Node versions we support (a Pipe handle, not the descriptor)', () => {
    assert.equal(directPipeHandles, true);
  });

  it('makes a Socket that reads, writes and closes its descriptor', async () => {
    const { fd, peer } = await acceptedPair();
    const options = unixStreamOptions(fd);
    assert.equal(options.fd, undefined);
    const socket = new Socket(options);
    assert.equal((socket as unknown as { _handle: { fd: number } })._handle.fd, fd, 'the handle holds the accepted descriptor');
    const got = new Promise<string>((resolve) => socket.once('data', (chunk: Buffer) => resolve(chunk.toString())));
    peer.write('ping');
    assert.equal(await got, 'ping');
    const answer: Buffer[] = [];
    const peerEnded = new Promise<void>((resolve) => peer.on('data', (c: Buffer) => answer.push(c)).once('end', resolve));
    socket.end('pong');
    await peerEnded;
    assert.equal(Buffer.concat(answer).toString(), 'pong');
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.destroy();
    await closed;
    peer.destroy();
  });

  it('gives options that Node\'s Socket constructor adds nothing to (one hidden class, not a new one per socket)', async () => {
    const keys: string[][] = [];
    for (let i = 0; i < 2; i++) {
      const { fd, peer } = await acceptedPair();
      const options = unixStreamOptions(fd);
      keys.push(Object.keys(options));
      // the values the constructor sets on its copy, so that it only overwrites them
      assert.equal(options.allowHalfOpen, true);
      assert.equal(options.emitClose, false);
      assert.equal(options.autoDestroy, true);
      assert.equal(options.decodeStrings, false);
      new Socket(options).destroy();
      peer.destroy();
    }
    assert.deepEqual(keys[0], keys[1]);
    for (const key of ['handle', 'fd', 'onread', 'allowHalfOpen', 'emitClose', 'autoDestroy', 'decodeStrings']) assert.ok(keys[0]!.includes(key), key);
  });

  it('throws for a descriptor that is not open, as new Socket({ fd }) does', async () => {
    const { fd, peer } = await acceptedPair();
    closeFd(fd);
    peer.destroy();
    assert.throws(() => unixStreamOptions(fd));
  });
});
