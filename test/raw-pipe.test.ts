// RawPipe: a connected Unix stream socket driven through its libuv handle
// alone (the downstream connection of a relay).  It reads into its one
// buffer, hears the peer's end and a failed read (the pipe then closed),
// takes gathered writes, and hears nothing once destroyed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { closeFd } from '../src/native/linux.js';
import { unixStreamOptions } from '../src/streams/pipe-handle.js';
import { RawPipe, type RawPipeReader } from '../src/streams/raw-pipe.js';
import { writeGathered, type WriteOutcome } from '../src/streams/write-pieces.js';
import { waitFor } from './helpers/daemon.js';
import { testListener } from './helpers/test-listener.js';

/** What a reader heard, in order. */
class Heard implements RawPipeReader {
  readonly events: string[] = [];
  private wake: (() => void) | undefined;

  received(bytes: Buffer, length: number): void {
    this.events.push(`data ${bytes.toString('latin1', 0, length)}`);
    this.wake?.();
  }
  ended(): void {
    this.events.push('end');
    this.wake?.();
  }
  failed(error: NodeJS.ErrnoException): void {
    this.events.push(`error ${error.code} ${error.syscall} ${error.errno}`);
    this.wake?.();
  }
  /** Resolves once `test` holds of the events. */
  until(test: (events: string[]) => boolean): Promise<void> {
    if (test(this.events)) return Promise.resolve();
    return new Promise((resolve) => {
      this.wake = () => {
        if (test(this.events)) resolve();
      };
    });
  }
}

function written(pipe: RawPipe, pieces: Buffer[]): Promise<WriteOutcome> {
  return new Promise((resolve) => writeGathered(pipe, pieces, undefined, { written: resolve }));
}

describe('RawPipe', () => {
  const listener = testListener('qrelay-raw-pipe-');

  /** Our RawPipe on a connected socket, and the accepted peer's descriptor. */
  async function connectedPair(buffer = Buffer.alloc(16)): Promise<{ pipe: RawPipe; peerFd: number }> {
    const pipe = RawPipe.open(listener.connect(), buffer);
    assert.ok(pipe !== undefined, 'Node 20 and 24 have the bindings');
    return { pipe, peerFd: await listener.accept() };
  }

  it('writes gathered pieces in order, reads into its buffer, and hears the end', async () => {
    const { pipe, peerFd } = await connectedPair();
    const peer = new Socket(unixStreamOptions(peerFd));
    const got: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => got.push(Buffer.from(chunk)));
    const heard = new Heard();
    pipe.start(heard);
    assert.equal(await written(pipe, [Buffer.from('one '), Buffer.from('two '), Buffer.from('three')]), undefined);
    await waitFor(() => Buffer.concat(got).length === 13, 5_000, 'the pieces at the peer');
    assert.equal(Buffer.concat(got).toString(), 'one two three');
    peer.end('answer');
    await heard.until((e) => e.includes('end'));
    assert.deepEqual(heard.events, ['data answer', 'end']);
    assert.equal(pipe.readableEnded, true);
    assert.equal(pipe.destroyed, false);
    pipe.destroy();
    assert.equal(pipe.destroyed, true);
    peer.destroy();
  });

  it('reads no more than its buffer holds at a time', async () => {
    const { pipe, peerFd } = await connectedPair(Buffer.alloc(4));
    const peer = new Socket(unixStreamOptions(peerFd));
    const heard = new Heard();
    pipe.start(heard);
    peer.end('abcdefghij');
    await heard.until((e) => e.includes('end'));
    assert.equal(heard.events.filter((e) => e.startsWith('data')).map((e) => e.slice(5)).join(''), 'abcdefghij');
    assert.ok(heard.events.every((e) => e === 'end' || e.length <= 5 + 4), heard.events.join('|'));
    pipe.destroy();
    peer.destroy();
  });

  it('reports a failed read as the system error and is closed by it', async () => {
    const { pipe, peerFd } = await connectedPair();
    const heard = new Heard();
    pipe.start(heard);
    // bytes the peer never reads: its close resets the connection
    assert.equal(await written(pipe, [Buffer.from('unread')]), undefined);
    closeFd(peerFd);
    await heard.until((e) => e.length > 0);
    assert.deepEqual(heard.events, ['error ECONNRESET read -104']);
    assert.equal(pipe.destroyed, true);
  });

  it('hears nothing once destroyed, even in the middle of a write the peer does not read', async () => {
    const { pipe, peerFd } = await connectedPair();
    const heard = new Heard();
    pipe.start(heard);
    const outcome = written(pipe, [Buffer.alloc(4 << 20)]);
    pipe.destroy();
    // the cancelled write reports as written: its stream is gone (as for a destroyed Socket)
    assert.equal(await outcome, undefined);
    closeFd(peerFd);
    assert.deepEqual(heard.events, []);
    // a write to a destroyed pipe is not made
    assert.equal(await written(pipe, [Buffer.from('late')]), undefined);
  });
  it('is not offered where Node lacks the bindings, and a relay to a Unix server then goes through a net.Socket', () => {
    // a child in which process.binding knows neither pipe_wrap nor
    // stream_wrap (as a Node release that drops them would): RawPipe.open()
    // leaves the descriptor to the caller, and relayToServer still relays
    const code = `
      const real = process.binding.bind(process);
      process.binding = (name) => { if (name === 'pipe_wrap' || name === 'stream_wrap') throw new Error('No such module: ' + name); return real(name); };
      const { createServer } = await import('node:net');
      const { firstValueFrom } = await import('rxjs');
      const { RawPipe } = await import(${JSON.stringify(new URL('../src/streams/raw-pipe.ts', import.meta.url).href)});
      const { relayToServer } = await import(${JSON.stringify(new URL('../src/actions/connect.ts', import.meta.url).href)});
      const { parseNumericAddress } = await import(${JSON.stringify(new URL('../src/protocol/socket-address.ts', import.meta.url).href)});
      const { connectSocket, closeFd } = await import(${JSON.stringify(new URL('../src/native/linux.ts', import.meta.url).href)});
      const path = process.argv[1];
      const server = createServer((s) => s.once('data', () => s.end('3:Kok,')));
      await new Promise((r) => server.listen(path, r));
      const { fd } = connectSocket({ family: 'unix', name: Buffer.from(path), abstract: false }, 'stream', false);
      const raw = RawPipe.open(fd, Buffer.alloc(16));
      closeFd(fd);
      const attempt = await firstValueFrom(relayToServer(parseNumericAddress(path, 628), [Buffer.from('1:x,')], { connectMs: 2000, sendStallMs: 2000, firstResponseByteMs: 2000, betweenResponseChunksMs: 2000 }));
      server.close();
      console.log(JSON.stringify({ raw: raw === undefined ? 'none' : 'made', attempt }));
    `;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '--eval', code, join(listener.dir, 'fallback.sock')], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { raw: 'none', attempt: { kind: 'answered', result: { response: 'Kok' } } });
  });
});
