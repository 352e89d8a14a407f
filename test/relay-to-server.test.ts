// relayToServer, the `connect` action's attempt on one server, driven
// directly with short timeouts: the send limit counts time without write
// progress (a slow reader that keeps reading is no stall), one gathered
// write carries the whole request, and unsubscribing closes the socket.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import { downstreamPipes, relayToServer, type RelayAttempt, type RelayTimeouts } from '../src/actions/connect.js';
import { parseNumericAddress } from '../src/protocol/socket-address.js';
import { netstring } from './helpers/qmqp.js';

const STALL_MS = 400;
const TIMEOUTS: RelayTimeouts = { connectMs: 2_000, sendStallMs: STALL_MS, firstResponseByteMs: 2_000, betweenResponseChunksMs: 2_000 };

/** A request of `mib` MiB in 64 KiB pieces, as a whole netstring. */
function bigRequest(mib: number): Buffer[] {
  const body: Buffer[] = [];
  for (let i = 0; i < mib * 16; i++) body.push(Buffer.alloc(64 * 1024, 0x61 + (i % 26)));
  const length = body.length * 64 * 1024;
  return [Buffer.from(`${length}:`), ...body, Buffer.from(',')];
}

function listen(path: string, onConnection: (socket: Socket) => void): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    onConnection(socket);
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

// every case twice: through a RawPipe (where Node has the bindings, as on
// the versions we support) and through a net.Socket (where it has not)
for (const raw of [true, false]) describe(`relayToServer (Unix servers through ${raw ? 'a RawPipe' : 'a net.Socket'})`, () => {
  let dir: string;
  const servers: Server[] = [];
  const sockets: Socket[] = [];
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qrelay-relay-'));
    downstreamPipes.raw = raw;
  });
  after(async () => {
    downstreamPipes.raw = true;
    for (const s of sockets) s.destroy();
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    rmSync(dir, { recursive: true, force: true });
  });

  async function server(name: string, onConnection: (socket: Socket) => void): Promise<string> {
    const path = join(dir, name);
    servers.push(
      await listen(path, (socket) => {
        sockets.push(socket);
        onConnection(socket);
      }),
    );
    return path;
  }

  it('relays to a slow reader that keeps reading for many times the stall limit', async () => {
    const request = bigRequest(2);
    const total = request.reduce((n, b) => n + b.length, 0);
    let received = 0;
    const path = await server('slow.sock', (socket) => {
      // what is buffered every STALL_MS / 8 (about 64 KiB): 1.5-2 s for 2 MiB, progress all the time
      socket.pause();
      const timer = setInterval(() => {
        const chunk = socket.read() as Buffer | null;
        if (chunk !== null) received += chunk.length;
        if (received === total) {
          clearInterval(timer);
          socket.end(netstring('Kslow but fine'));
        }
      }, STALL_MS / 8);
      socket.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const attempt = await firstValueFrom(relayToServer(parseNumericAddress(path, 628), request, TIMEOUTS));
    assert.deepEqual(attempt, { kind: 'answered', result: { response: 'Kslow but fine' } });
    assert.equal(received, total);
    // it really took longer than the stall limit, several times over
    assert.ok(Date.now() - started > 3 * STALL_MS, `${Date.now() - started} ms`);
  });

  it('gives up on a reader that stops: Zrelay failed, Connect timeout, not sent', async () => {
    let got = 0;
    const path = await server('stops.sock', (socket) => {
      socket.once('data', (chunk: Buffer) => {
        got = chunk.length;
        socket.pause();
      });
    });
    const started = Date.now();
    const attempt = await firstValueFrom(relayToServer(parseNumericAddress(path, 628), bigRequest(8), TIMEOUTS));
    const ms = Date.now() - started;
    assert.deepEqual(attempt, { kind: 'not-sent', result: { response: 'Zrelay failed', log: ['Connect timeout'] } });
    assert.ok(got > 0);
    assert.ok(ms >= STALL_MS && ms < 3 * STALL_MS, `${ms} ms`);
  });

  it('closes the socket and emits nothing when unsubscribed in the middle of the write', async () => {
    let closed!: () => void;
    const gone = new Promise<void>((r) => (closed = r));
    let connected!: () => void;
    const accepted = new Promise<void>((r) => (connected = r));
    const path = await server('unsubscribe.sock', (socket) => {
      socket.pause();
      socket.on('end', () => closed());
      socket.on('close', () => closed());
      connected();
    });
    const seen: RelayAttempt[] = [];
    const subscription = relayToServer(parseNumericAddress(path, 628), bigRequest(8), TIMEOUTS).subscribe((a) => seen.push(a));
    await accepted;
    subscription.unsubscribe();
    for (const s of sockets) s.resume();
    await gone;
    // longer than the stall limit: no timer is left to report anything
    await new Promise((r) => setTimeout(r, STALL_MS * 1.5));
    assert.deepEqual(seen, []);
  });

  /** A server that answers with `answer()` after the first chunk of the request, then reads the rest 100 ms later. */
  function answersEarly(name: string, answer: (socket: Socket) => void): Promise<string> {
    return server(name, (socket) => {
      socket.once('data', () => {
        socket.pause();
        answer(socket);
        setTimeout(() => socket.resume(), 100);
      });
    });
  }

  it('reads an answer sent before the whole request was read, once the request is written', async () => {
    // 4 MiB: the write is still under way when the answer arrives
    const path = await answersEarly('early.sock', (socket) => socket.write(netstring('Kearly')));
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(path, 628), bigRequest(4), TIMEOUTS)), {
      kind: 'answered',
      result: { response: 'Kearly' },
    });
  });

  it('reads an early answer in pieces followed by the end of the server side', async () => {
    const path = await answersEarly('early-pieces.sock', (socket) => {
      socket.write('6:K');
      setTimeout(() => socket.end('piece,'), 20);
    });
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(path, 628), bigRequest(4), TIMEOUTS)), {
      kind: 'answered',
      result: { response: 'Kpiece' },
    });
    const incomplete = await answersEarly('early-incomplete.sock', (socket) => socket.end('6:K'));
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(incomplete, 628), bigRequest(4), TIMEOUTS)), {
      kind: 'sent',
      result: { response: 'Zrelay failed', log: ['Peer closed the socket prematurely'] },
    });
  });

  it('decides an early flood of bytes by its first bytes, as the reader does', async () => {
    const flood = Buffer.alloc(1024 * 1024, 0x31);
    const digits = await answersEarly('early-digits.sock', (socket) => socket.write(flood));
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(digits, 628), bigRequest(4), TIMEOUTS)), {
      kind: 'sent',
      result: { response: 'Zrelay failed', log: ['Malformed netstring'] },
    });
    const long = await answersEarly('early-long.sock', (socket) => socket.write(Buffer.concat([netstring('K' + 'x'.repeat(255)), flood])));
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(long, 628), bigRequest(4), TIMEOUTS)), {
      kind: 'answered',
      result: { response: 'K' + 'x'.repeat(255) },
    });
  });

  it('reads an answer longer than one read of the answer buffer after a short first piece', async () => {
    // the first read holds 4 bytes, the next one 256 + 1 + 2048 (more than a read of the answer buffer takes)
    const path = await server('long.sock', (socket) => {
      socket.once('data', () => {
        socket.write('256:');
        setTimeout(() => socket.write(Buffer.concat([Buffer.from('D' + 'y'.repeat(255) + ','), Buffer.alloc(2048, 0x7a)])), 50);
      });
    });
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(path, 628), [netstring('x')], TIMEOUTS)), {
      kind: 'answered',
      result: { response: 'D' + 'y'.repeat(255) },
    });
  });

  it('reads an answer that arrives in pieces, and reports a premature close after the request as sent', async () => {
    const pieces = await server('pieces.sock', (socket) => {
      socket.once('data', () => {
        socket.write('6:K');
        setTimeout(() => socket.end('piece,'), 50);
      });
    });
    const small = [netstring('x')];
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(pieces, 628), small, TIMEOUTS)), {
      kind: 'answered',
      result: { response: 'Kpiece' },
    });
    const closes = await server('closes.sock', (socket) => socket.once('data', () => socket.end('3:K')));
    assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(closes, 628), small, TIMEOUTS)), {
      kind: 'sent',
      result: { response: 'Zrelay failed', log: ['Peer closed the socket prematurely'] },
    });
  });
  it('answers Zconnect failed, not sent, for a path where nothing listens and for a missing path', async () => {
    const file = join(dir, 'not-a-socket');
    writeFileSync(file, '');
    for (const [path, log] of [
      [file, 'Failed to connect: Connection refused'],
      [join(dir, 'missing.sock'), 'Failed to connect: No such file or directory'],
    ] as const) {
      assert.deepEqual(await firstValueFrom(relayToServer(parseNumericAddress(path, 628), [netstring('x')], TIMEOUTS)), {
        kind: 'not-sent',
        result: { response: 'Zconnect failed', log: [log] },
      });
    }
  });

  /** A server that reads every request and never answers; `gone` resolves when a connection to it closes. */
  async function silent(name: string): Promise<{ path: string; accepted: Promise<void>; read: Promise<void>; gone: Promise<void> }> {
    let accept!: () => void;
    let readAll!: () => void;
    let close!: () => void;
    const accepted = new Promise<void>((r) => (accept = r));
    const read = new Promise<void>((r) => (readAll = r));
    const gone = new Promise<void>((r) => (close = r));
    const path = await server(name, (socket) => {
      accept();
      socket.on('data', (chunk: Buffer) => {
        if (chunk.includes(',')) readAll();
      });
      socket.on('end', () => close());
      socket.on('close', () => close());
    });
    return { path, accepted, read, gone };
  }

  it('closes the socket and emits nothing when unsubscribed right after subscribing (before the connection is accepted)', async () => {
    const { path, accepted, gone } = await silent('unsubscribe-connect.sock');
    const seen: RelayAttempt[] = [];
    relayToServer(parseNumericAddress(path, 628), [netstring('x')], TIMEOUTS)
      .subscribe((a) => seen.push(a))
      .unsubscribe();
    await accepted;
    await gone;
    assert.deepEqual(seen, []);
  });

  it('closes the socket and emits nothing when unsubscribed while waiting for the answer', async () => {
    const { path, read, gone } = await silent('unsubscribe-answer.sock');
    const seen: RelayAttempt[] = [];
    const short = { ...TIMEOUTS, firstResponseByteMs: STALL_MS };
    const subscription = relayToServer(parseNumericAddress(path, 628), [netstring('x')], short).subscribe((a) => seen.push(a));
    await read;
    subscription.unsubscribe();
    await gone;
    // longer than the answer's time limit: no timer is left to report anything
    await new Promise((r) => setTimeout(r, STALL_MS * 1.5));
    assert.deepEqual(seen, []);
  });
});
