// serveClient, the whole per-connection stream, on a real Unix socket pair
// with short injected timeouts and a policy written in TypeScript (no Lua):
// the receive idle limit, cancellation when the client goes (disconnect,
// half-close, bytes after the request), shutdown, and unsubscribing.  The
// end-to-end tests keep one real-time representative of each
// (qmqp-e2e.test.ts, pond-e2e.test.ts); the variants live here.  Every
// case runs twice: with the accepted connection as a ClientPipe (the bare
// libuv handle, as the daemon has it where Node has the bindings) and as
// the net.Socket it falls back to.
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { EMPTY, NEVER, Observable, Subject, map, of, throwError, timer, type Subscription } from 'rxjs';
import { ServerBackoff } from '../src/actions/server-backoff.js';
import type { Client } from '../src/client.js';
import { gauges } from '../src/metrics.js';
import { acceptConnection } from '../src/native/linux.js';
import { withPeerCredentials } from '../src/operators/peer-credentials.js';
import type { MailOutcome } from '../src/operators/pond-log.js';
import { serveClient } from '../src/operators/serve-client.js';
import type { Action, Decision, MailInput, MailState, Policy } from '../src/policy.js';
import { resolveAddress } from '../src/protocol/socket-address.js';
import { acceptedClient, clientPipes } from '../src/streams/client-socket.js';
import { bindListeningFd, closeListener, type Listener } from '../src/streams/listener.js';
import { ReceiveBudget } from '../src/streams/receive-budget.js';
import { DEFAULT_TIMEOUTS, type Timeouts } from '../src/timeouts.js';
import { removeDir, tempDir, waitFor } from './helpers/daemon.js';
import { netstring, qmqpRequest } from './helpers/qmqp.js';

const IDLE_MS = 300;
const TIMEOUTS: Timeouts = { ...DEFAULT_TIMEOUTS, receiveIdleMs: IDLE_MS };
const LISTENER: Listener = { fd: -1, name: 'serve-client-test', ownFile: undefined, handler: 1, maxSize: 4096 };
const REQUEST = qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'alice@example.com', ['bob@example.org']);
const MAIL_STATE: MailState = { sender: 'alice@example.com', account: undefined, headers: [] };

const decided = (action: Action): Decision => ({ kind: 'action', action, mail: MAIL_STATE });

/**
 * A policy that decides with `decide` and records what the pipeline did
 * with its sessions: opened, decision abandoned (unsubscribed before it
 * was emitted), closed.
 */
class RecordingPolicy implements Policy {
  readonly opened: MailInput[] = [];
  abandoned = 0;
  closed = 0;

  constructor(private readonly decide: () => Observable<Decision>) {}

  open(listener: number, mail: MailInput): { decision$: Observable<Decision>; close(): MailState } {
    assert.equal(listener, LISTENER.handler);
    this.opened.push(mail);
    const decision$ = new Observable<Decision>((subscriber) => {
      let emitted = false;
      const inner = this.decide().subscribe({
        next: (d) => {
          emitted = true;
          subscriber.next(d);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return () => {
        inner.unsubscribe();
        if (!emitted) this.abandoned++;
      };
    });
    return {
      decision$,
      close: () => {
        this.closed++;
        return MAIL_STATE;
      },
    };
  }
}

/** Decides `discard` at once (synchronously, as Lua does for a plain handler). */
const discardAtOnce = (): RecordingPolicy => new RecordingPolicy(() => of(decided({ kind: 'discard' })));
/** Decides `reject` after `ms` (a handler that waits). */
const rejectAfter = (ms: number): RecordingPolicy => new RecordingPolicy(() => timer(ms).pipe(map(() => decided({ kind: 'reject' }))));
/** Never decides (a handler that sleeps for ever). */
const neverDecides = (): RecordingPolicy => new RecordingPolicy(() => NEVER);

interface Connection {
  /** The client's end. */
  readonly peer: Socket;
  /** Every byte the client received, once the daemon's side closed. */
  readonly received: Promise<string>;
  /** Settles when serveClient's stream completes (rejects if it errors). */
  readonly served: Promise<void>;
  readonly subscription: Subscription;
  readonly outcomes: MailOutcome[];
  readonly startedAt: number;
}

for (const raw of [true, false]) describe(`serveClient (the client connection as ${raw ? 'a ClientPipe' : 'a net.Socket'})`, () => {
  let dir: string;
  let listenFd: number;

  before(() => {
    dir = tempDir('qrelay-serve-client-');
    listenFd = bindListeningFd({ kind: 'path', path: join(dir, 'qrelay.sock') });
    clientPipes.raw = raw;
  });
  after(() => {
    clientPipes.raw = true;
    closeListener({ ...LISTENER, fd: listenFd });
    removeDir(dir);
  });

  /** The daemon's side of the connection just made, accepted as the daemon accepts it. */
  async function nextAccepted(): Promise<ReturnType<typeof acceptedClient>> {
    let fd: number | undefined;
    await waitFor(() => (fd = acceptConnection(listenFd)) !== undefined, 5_000, 'the connection');
    return acceptedClient(fd!);
  }

  /** Connects a client and serves its connection with `policy`. */
  async function open(policy: Policy, options: { shutdown$?: Observable<unknown>; receiveBudget?: ReceiveBudget } = {}): Promise<Connection> {
    const peer = connect({ path: join(dir, 'qrelay.sock'), allowHalfOpen: true });
    peer.on('error', () => {});
    const chunks: Buffer[] = [];
    peer.on('data', (chunk: Buffer) => chunks.push(chunk));
    const received = new Promise<string>((resolve) => {
      const done = (): void => resolve(Buffer.concat(chunks).toString('latin1'));
      peer.once('end', done);
      peer.once('close', done);
    });
    const socket = await nextAccepted();
    const client = await new Promise<Client>((resolve) => of({ socket, listener: LISTENER }).pipe(withPeerCredentials()).subscribe(resolve));
    const outcomes: MailOutcome[] = [];
    const startedAt = Date.now();
    let subscription!: Subscription;
    const served = new Promise<void>((resolve, reject) => {
      subscription = serveClient(client, {
        policy,
        mailLog: { log: (outcome) => outcomes.push(outcome) },
        shutdown$: options.shutdown$ ?? NEVER,
        timeouts: TIMEOUTS,
        backoff: new ServerBackoff({ firstMs: TIMEOUTS.serverBackoffFirstMs, maxMs: TIMEOUTS.serverBackoffMaxMs }),
        receiveBudget: options.receiveBudget ?? new ReceiveBudget(1 << 20),
      }).subscribe({ complete: resolve, error: reject });
    });
    return { peer, received, served, subscription, outcomes, startedAt };
  }

  /** Waits until the policy has the mail (the handler runs). */
  const handlerRuns = (policy: RecordingPolicy, count = 1): Promise<void> => waitFor(() => policy.opened.length >= count, 5_000, 'the handler to run');

  describe('answers', () => {
    it('writes the answer of a decision that comes later, then closes the connection', async () => {
      const policy = rejectAfter(50);
      const c = await open(policy);
      c.peer.write(REQUEST);
      assert.equal(await c.received, '9:Drejected,');
      await c.served;
      assert.equal(policy.opened[0]!.sender, 'alice@example.com');
      assert.deepEqual(policy.opened[0]!.recipients, ['bob@example.org']);
      assert.equal(policy.opened[0]!.credentials?.pid, process.pid, 'the kernel names the client');
      assert.equal(policy.closed >= 1, true, 'the session is closed with the connection');
      assert.equal(c.outcomes.length, 1);
      assert.deepEqual(c.outcomes[0]!.result, { kind: 'answered', response: 'Drejected', relayed: false });
    });

    it('answers a request that does not parse at once, without asking the policy', async () => {
      const policy = discardAtOnce();
      const c = await open(policy);
      c.peer.write(netstring('0:,'));
      assert.equal(await c.received, '16:Dmalformed input,');
      await c.served;
      assert.equal(policy.opened.length, 0);
      assert.equal(c.outcomes.length, 0, 'no Pond record for a request that did not parse');
    });

    it('completes and closes the connection when the answer cannot be written (the client is gone)', async () => {
      const connections = gauges.connectionsInFlight;
      const c = await open(discardAtOnce());
      // announced too large: answered as soon as the header is read, which is after the client closed
      await new Promise((resolve) => c.peer.write('999999:', resolve));
      c.peer.destroy();
      await c.served;
      assert.equal(await c.received, '');
      assert.equal(gauges.connectionsInFlight, connections);
    });

    // the Lua engine always decides once; these are what processMail does with a policy that does not
    for (const [how, decide] of [
      ['completes without deciding', (): Observable<Decision> => EMPTY],
      ['fails (a bug)', (): Observable<Decision> => throwError(() => new Error('policy bug'))],
    ] as const) {
      it(`closes the connection without an answer or a record when the policy ${how}`, async () => {
        const mails = gauges.mailsInFlight;
        const policy = new RecordingPolicy(decide);
        const c = await open(policy);
        c.peer.write(REQUEST);
        await c.served;
        assert.equal(await c.received, '');
        assert.equal(c.outcomes.length, 0);
        assert.ok(policy.closed >= 1, 'the session is closed');
        assert.equal(gauges.mailsInFlight, mails);
      });
    }
  });

  describe('the receive idle limit (receiveIdleMs)', () => {
    it('closes a connection that sends nothing, from the moment it was accepted, without an answer', async () => {
      const policy = discardAtOnce();
      const c = await open(policy);
      assert.equal(await c.received, '');
      await c.served;
      const elapsed = Date.now() - c.startedAt;
      assert.ok(elapsed >= IDLE_MS - 10, `closed after ${elapsed} ms, before the limit`);
      assert.equal(policy.opened.length, 0);
      assert.equal(c.outcomes.length, 0);
    });

    it('closes a connection that stops in the middle of its request, without an answer', async () => {
      const c = await open(discardAtOnce());
      c.peer.write('100:abc');
      assert.equal(await c.received, '');
      await c.served;
      assert.ok(Date.now() - c.startedAt >= IDLE_MS - 10);
    });

    it('starts over with every chunk: a client that trickles its request within the limit is served', async () => {
      const c = await open(discardAtOnce());
      const pause = (IDLE_MS * 2) / 3;
      for (const piece of [REQUEST.subarray(0, 10), REQUEST.subarray(10, 20), REQUEST.subarray(20, 30)]) {
        c.peer.write(piece);
        await new Promise((r) => setTimeout(r, pause));
      }
      c.peer.write(REQUEST.subarray(30));
      assert.equal(await c.received, '10:Kdiscarded,');
      // three pauses of two thirds of the limit: twice the limit in all, and no total limit
      assert.ok(Date.now() - c.startedAt >= 2 * IDLE_MS);
    });

    it('does not count the time the receive budget holds a connection back', async () => {
      const budget = new ReceiveBudget(1000);
      const large = qmqpRequest('x'.repeat(3900), 'alice@example.com', ['bob@example.org']);
      const a = await open(discardAtOnce(), { receiveBudget: budget });
      a.peer.write(large.subarray(0, 3000));
      await waitFor(() => budget.bytesInFlight === 3000, 5_000, 'the first 3000 bytes read');
      // a second reader over the budget: the largest request (a's) is held back
      const b = await open(discardAtOnce(), { receiveBudget: budget });
      const pieces = [0, 1, 2, 3, 4].map((i) => REQUEST.subarray(Math.floor((i * REQUEST.length) / 5), Math.floor(((i + 1) * REQUEST.length) / 5)));
      b.peer.write(pieces[0]!);
      await waitFor(() => budget.bytesInFlight === 3000 + pieces[0]!.length, 5_000, "b's first piece read");
      const heldSince = Date.now();
      // a sends the rest at once: it waits in the kernel while a is held back
      a.peer.write(large.subarray(3000));
      let aDone = 0;
      void a.received.then(() => (aDone = Date.now()));
      for (const piece of pieces.slice(1)) {
        await new Promise((r) => setTimeout(r, (IDLE_MS * 2) / 3));
        b.peer.write(piece);
      }
      assert.equal(await b.received, '10:Kdiscarded,');
      // b's end resumed a, held back for more than twice the idle limit
      assert.equal(await a.received, '10:Kdiscarded,');
      assert.ok(aDone - heldSince >= 2 * IDLE_MS, `a was answered after ${aDone - heldSince} ms`);
    });

    it('gives a connection the budget held back the whole limit again once it is resumed', async () => {
      const budget = new ReceiveBudget(1000);
      const large = qmqpRequest('x'.repeat(3900), 'alice@example.com', ['bob@example.org']);
      const a = await open(discardAtOnce(), { receiveBudget: budget });
      a.peer.write(large.subarray(0, 3000));
      await waitFor(() => budget.bytesInFlight === 3000, 5_000, 'the first 3000 bytes read');
      // a's idle timer (re)started when those bytes were read: it fires at
      // 1×, 2×… the limit from here, while a is held back by b
      const aRead = Date.now();
      const b = await open(discardAtOnce(), { receiveBudget: budget });
      b.peer.write(REQUEST.subarray(0, 10));
      await waitFor(() => budget.bytesInFlight === 3010, 5_000, "b's first bytes read");
      // b trickles within the limit and completes shortly before a's timer
      // fires for the second time: that resumes a
      const until = (ms: number): Promise<unknown> => new Promise((r) => setTimeout(r, Math.max(0, aRead + ms - Date.now())));
      await until(0.6 * IDLE_MS);
      b.peer.write(REQUEST.subarray(10, 20));
      await until(1.2 * IDLE_MS);
      b.peer.write(REQUEST.subarray(20, 30));
      await until(1.8 * IDLE_MS);
      const resumedAfter = Date.now();
      b.peer.write(REQUEST.subarray(30));
      assert.equal(await b.received, '10:Kdiscarded,');
      // a stays silent after its resume: closed without an answer, a whole limit later
      assert.equal(await a.received, '');
      await a.served;
      const silentFor = Date.now() - resumedAfter;
      assert.ok(silentFor >= IDLE_MS, `a was closed ${silentFor} ms after b's end resumed it`);
    });

    it('does not limit the time the policy takes once the request is complete', async () => {
      const c = await open(rejectAfter(2 * IDLE_MS));
      c.peer.write(REQUEST);
      assert.equal(await c.received, '9:Drejected,');
    });
  });

  describe('cancellation when the client goes (the mail is cancelled, no answer)', () => {
    for (const [how, go] of [
      ['disconnects', (peer: Socket) => peer.destroy()],
      ['half-closes', (peer: Socket) => peer.end()],
      ['sends more bytes', (peer: Socket) => peer.write('x')],
      ['sends a second request', (peer: Socket) => peer.write(REQUEST)],
    ] as const) {
      it(`abandons the handler when the client ${how} while it runs`, async () => {
        const policy = neverDecides();
        const c = await open(policy);
        c.peer.write(REQUEST);
        await handlerRuns(policy);
        go(c.peer);
        await c.served;
        assert.equal(await c.received, '');
        assert.equal(policy.abandoned, 1, 'the handler is abandoned');
        assert.ok(policy.closed >= 1, 'the mail object goes stale');
        assert.equal(c.outcomes.length, 1);
        assert.deepEqual(c.outcomes[0]!.result, { kind: 'canceled', reason: 'canceled', relayed: false });
      });
    }

    it('cancels at once when bytes came with the request (early talk), unless the answer is ready at once', async () => {
      // the policy takes its time: the bytes after the request cancel it before it decides
      const slow = rejectAfter(5_000);
      const c = await open(slow);
      c.peer.write(Buffer.concat([REQUEST, REQUEST]));
      await c.served;
      assert.equal(await c.received, '');
      assert.ok(Date.now() - c.startedAt < 5_000, 'without waiting for the decision');
      assert.equal(slow.abandoned, 1);
      assert.deepEqual(c.outcomes[0]!.result, { kind: 'canceled', reason: 'canceled', relayed: false });

      // a synchronous answer (discard, reject, script error) is given before anything else is looked at
      const quick = await open(discardAtOnce());
      quick.peer.write(Buffer.concat([REQUEST, Buffer.from('more')]));
      assert.equal(await quick.received, '10:Kdiscarded,');
      assert.equal(quick.outcomes[0]!.result.kind, 'answered');
    });

    it('closes the downstream connection of a relay when the client goes; the mail counts as relayed', async () => {
      const downPath = join(dir, 'down.sock');
      const downstream: Socket[] = [];
      // reads (and drops) what it gets, so it sees the relay's end; never answers
      const down = createServer((s) => downstream.push(s.on('error', () => {}).resume()));
      await new Promise<void>((resolve) => down.listen(downPath, resolve));
      try {
        const connectAction: Action = { kind: 'connect', servers: [resolveAddress(downPath, 628, 'stream')], order: 'sequential', connectTimeoutMs: undefined, timeoutMs: undefined };
        const policy = new RecordingPolicy(() => of(decided(connectAction)));
        const c = await open(policy);
        c.peer.write(REQUEST);
        await waitFor(() => downstream.length === 1, 5_000, 'the relay connection');
        const downClosed = new Promise((resolve) => downstream[0]!.once('close', resolve));
        c.peer.end();
        await c.served;
        await downClosed;
        assert.equal(await c.received, '');
        assert.deepEqual(c.outcomes[0]!.result, { kind: 'canceled', reason: 'canceled', relayed: true });
      } finally {
        await new Promise((resolve) => down.close(resolve));
      }
    });
  });

  describe('shutdown (options.shutdown$)', () => {
    it('cancels a mail in flight: no answer, the connection is closed, the handler abandoned', async () => {
      const shutdown$ = new Subject<void>();
      const policy = neverDecides();
      const c = await open(policy, { shutdown$ });
      c.peer.write(REQUEST);
      await handlerRuns(policy);
      shutdown$.next();
      await c.served;
      assert.equal(await c.received, '');
      assert.equal(policy.abandoned, 1);
      assert.deepEqual(c.outcomes[0]!.result, { kind: 'canceled', reason: 'canceled', relayed: false });
    });

    it('drops a client still sending its request: no answer, no policy call, no record', async () => {
      const shutdown$ = new Subject<void>();
      const policy = discardAtOnce();
      const c = await open(policy, { shutdown$ });
      // a client trickling its request would otherwise keep the connection (and the shutdown) going
      c.peer.write(REQUEST.subarray(0, 10));
      await waitFor(() => c.peer.bytesWritten === 10, 5_000, 'the first bytes sent');
      shutdown$.next();
      await c.served;
      assert.equal(await c.received, '');
      assert.ok(Date.now() - c.startedAt < IDLE_MS, 'dropped at shutdown, not by the idle limit');
      assert.equal(policy.opened.length, 0);
      assert.equal(c.outcomes.length, 0);
    });

    it('leaves a mail that was answered before alone', async () => {
      const shutdown$ = new Subject<void>();
      const c = await open(discardAtOnce(), { shutdown$ });
      c.peer.write(REQUEST);
      assert.equal(await c.received, '10:Kdiscarded,');
      shutdown$.next();
      await c.served;
      assert.equal(c.outcomes.length, 1);
      assert.equal(c.outcomes[0]!.result.kind, 'answered');
    });
  });

  describe('unsubscribing (the daemon drops the connection)', () => {
    it('abandons the handler, closes the session and the socket, and leaves the gauges as they were', async () => {
      const connections = gauges.connectionsInFlight;
      const mails = gauges.mailsInFlight;
      const policy = neverDecides();
      const c = await open(policy);
      c.peer.write(REQUEST);
      await handlerRuns(policy);
      assert.equal(gauges.connectionsInFlight, connections + 1);
      assert.equal(gauges.mailsInFlight, mails + 1);
      c.subscription.unsubscribe();
      assert.equal(await c.received, '');
      assert.equal(policy.abandoned, 1);
      assert.ok(policy.closed >= 1);
      assert.equal(gauges.connectionsInFlight, connections);
      assert.equal(gauges.mailsInFlight, mails);
      assert.equal(c.outcomes.length, 0, 'no Pond record: the mail was neither answered nor cancelled by the client');
    });
  });
});
