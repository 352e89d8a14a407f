// Action `connect`, one server: relay the request to a QMQP server and
// read its answer (docs/protocol.md).  What happened decides whether another
// server may be tried (src/actions/failover.ts).
import { connect as netConnect, Socket, type OnReadOpts } from 'node:net';
import { Observable, type Subscriber } from '../rx.js';
import { connectSocket, ENOTCONN, strerror, systemErrorText } from '../native/linux.js';
import { NetstringReader } from '../protocol/netstring-reader.js';
import { Responses } from '../protocol/responses.js';
import { ipHost, type SocketAddress } from '../protocol/socket-address.js';
import { unixStreamOptions } from '../streams/pipe-handle.js';
import { RawPipe, type RawPipeReader } from '../streams/raw-pipe.js';
import { writeGathered, type GatheredWrite, type WriteListener, type WriteOutcome } from '../streams/write-pieces.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult, type RelayReport } from './action-result.js';
import { ANSWER_DECIDED_WITHIN, MAX_RESPONSE, PREMATURE_CLOSE, qmqpAnswer, wholeAnswer } from './qmqp-response.js';
import { relayFailed, writeFailure } from './send-request.js';

/** How one attempt ended; `result` is what the client gets if it is the last. */
export type RelayAttempt =
  /** The server answered K, Z or D (`result.response` is its answer). */
  | { readonly kind: 'answered'; readonly result: ActionResult }
  /** Failed before the whole request was written: the server cannot have taken the mail. */
  | { readonly kind: 'not-sent'; readonly result: ActionResult }
  /** Failed after the request was written (no answer, or a malformed one): the server may have taken the mail. */
  | { readonly kind: 'sent'; readonly result: ActionResult };

export type RelayTimeouts = Pick<Timeouts, 'connectMs' | 'sendStallMs' | 'firstResponseByteMs' | 'betweenResponseChunksMs'>;

/** The options of `net.connect` that tcpConnectOptions gives (Node's types list neither the Duplex options nor `decodeStrings`). */
export interface TcpConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly allowHalfOpen: true;
  readonly onread: OnReadOpts | undefined;
  readonly emitClose: false;
  readonly autoDestroy: true;
  readonly decodeStrings: false;
}

/**
 * Options for `net.connect` to `host`:`port` (half-open allowed, reads
 * into `onread` when given), with
 * every option Node's Socket constructor sets on its own copy already
 * present with the value it sets, so that the copy gets no property added:
 * on Node 20 a spread copy with a property added gets a new hidden class
 * every time (as for the Unix sockets, src/streams/pipe-handle.ts).
 * Measured: `new Socket` and destroy 18-29 µs with `{ host, port,
 * allowHalfOpen }`, 5-8 µs with these.
 */
export function tcpConnectOptions(host: string, port: number, onread?: OnReadOpts): TcpConnectOptions {
  return { host, port, allowHalfOpen: true, onread, emitClose: false, autoDestroy: true, decodeStrings: false };
}

/**
 * What every downstream socket reads into: one small buffer for all of
 * them, whose bytes are decoded (or copied) in the read's callback, before
 * the next read of any socket.  An answer is at most ANSWER_DECIDED_WITHIN
 * bytes; a read takes at most what the buffer holds.  Without it Node
 * reads into a fresh 64 KiB buffer per read, copies the bytes into one of
 * the read's size and pushes that through the Readable ('data').
 * Measured (relayToServer alone, 8 at a time to the C sink, 2 KB): user
 * CPU per relay 0.62-0.84x of before (about 6 µs less).
 */
const ANSWER_BUFFER = Buffer.allocUnsafe(1024);

/** The read callback of downstream sockets (Node calls it with the socket as `this`). */
function onAnswerRead(this: AttemptSocket, length: number, buffer: Uint8Array): boolean {
  this[ATTEMPT].received(buffer as Buffer, length);
  return true;
}

const ANSWER_READS: OnReadOpts = { buffer: ANSWER_BUFFER, callback: onAnswerRead };

/**
 * For tests: whether Unix servers are relayed to through a RawPipe where
 * Node has the bindings for it (false: through a net.Socket, as where it
 * has not).
 */
export const downstreamPipes = { raw: true };

/**
 * The downstream connection.  A Unix socket is a RawPipe (no net.Socket;
 * measured against the Socket, two same-run A/Bs of 5 rounds on a busy
 * machine, medians of the per-round ratios: CPU per relayed 2 KB mail
 * 0.96x and 0.90x, 1 MiB 0.83x and 1.00x), or a Socket where Node lacks
 * the bindings.
 */
function openSocket(address: SocketAddress): Socket | RawPipe {
  if (address.family === 'unix') {
    // connected by the native module: Node pads abstract names, and a path
    // connected here needs no 'connect' callback a loop turn later
    const { fd } = connectSocket(address, 'stream', false);
    return (downstreamPipes.raw ? RawPipe.open(fd, ANSWER_BUFFER) : undefined) ?? new Socket(unixStreamOptions(fd, ANSWER_READS));
  }
  return netConnect(tcpConnectOptions(ipHost(address), address.port, ANSWER_READS));
}

/** A failed connect: a Unix socket whose listen backlog is full is EAGAIN, which the original takes for "in progress", and its first write fails (docs/actions.md, connect). */
function connectFailure(e: NodeJS.ErrnoException): ActionFailure {
  return e.code === 'EAGAIN'
    ? relayFailed(`Failed to write: ${strerror(ENOTCONN)}`)
    : new ActionFailure(Responses.connectFailed, `Failed to connect: ${systemErrorText(e)}`);
}

const enum Phase {
  Connect,
  Send,
  Answer,
  Done,
}

/** The attempt a socket belongs to, for the socket's listeners below. */
const ATTEMPT: unique symbol = Symbol('relay attempt');

interface AttemptSocket extends Socket {
  [ATTEMPT]: ServerAttempt;
}

// The listeners and the timer's callback are functions of this module, the
// same for every attempt (Node calls a listener with the socket as `this`),
// and the attempt's own work is done by methods: no closures are made per
// mail (about 18 before).  Measured: 0.97x the CPU per 1 MiB mail, no
// change at 2 KB.  It does not keep the optimised code through a full
// collection in a quiet pause, as hoped: see releaseAfterStartup in
// src/streams/release-memory.ts.
function onSocketError(this: AttemptSocket, e: NodeJS.ErrnoException): void {
  this[ATTEMPT].failed(e);
}
function onSocketConnect(this: AttemptSocket): void {
  this[ATTEMPT].connected();
}
function onSocketEnd(this: AttemptSocket): void {
  this[ATTEMPT].ended();
}
function onTimer(attempt: ServerAttempt): void {
  attempt.timedOut();
}

/**
 * The result of the attempt for the client, with `report` (a relay to one
 * server: relayWithReport).  Not `{ ...attempt.result, relay }`: on Node
 * 20 a spread copy with a property added gets a new hidden class every
 * time.
 */
function withRelayReport({ result: { response, log } }: RelayAttempt, report: RelayReport): ActionResult {
  return log === undefined ? { response, relay: report } : { response, log, relay: report };
}

/**
 * One attempt on one server: the state of relayToServer's (or
 * relayWithReport's) subscription (its teardown is unsubscribe()).  With
 * a `report` it emits the attempt's ActionResult carrying that report,
 * without one the RelayAttempt itself.
 */
class ServerAttempt implements WriteListener, RawPipeReader {
  private phase = Phase.Connect;
  private timer: NodeJS.Timeout | undefined = undefined;
  private write: GatheredWrite | undefined = undefined;
  private reader: NetstringReader | undefined = undefined;
  /** Copies of what the server sent before the request was written, up to ANSWER_DECIDED_WITHIN bytes. */
  private early: Buffer[] | undefined = undefined;
  private earlyBytes = 0;

  constructor(
    private readonly subscriber: Subscriber<RelayAttempt | ActionResult>,
    private readonly socket: AttemptSocket | RawPipe,
    private readonly request: readonly Buffer[],
    private readonly timeouts: RelayTimeouts,
    private readonly report: RelayReport | undefined,
  ) {
    if (!(socket instanceof RawPipe)) socket[ATTEMPT] = this;
  }

  /** Sends once connected; `timed`: the connect has a time limit. */
  start(timed: boolean): void {
    const { socket } = this;
    if (socket instanceof RawPipe) {
      // connected already; its reads and their end come to this attempt's methods
      socket.start(this);
      this.send();
      return;
    }
    socket.on('error', onSocketError);
    if (socket.connecting) {
      socket.on('connect', onSocketConnect);
      if (timed) this.arm(this.timeouts.connectMs);
    } else {
      this.send();
    }
  }

  /** The teardown: closes the socket and clears the timer; nothing is emitted after it. */
  unsubscribe(): void {
    this.phase = Phase.Done;
    this.disarm();
    this.write?.unsubscribe();
    this.socket.destroy();
  }

  connected(): void {
    if (this.phase === Phase.Connect) this.send();
  }

  failed(e: NodeJS.ErrnoException): void {
    // while sending, a failure is reported through the write
    if (this.phase === Phase.Connect) this.fail(connectFailure(e));
    else if (this.phase === Phase.Answer) this.fail(relayFailed(`Failed to receive: ${systemErrorText(e)}`));
  }

  written(outcome: WriteOutcome): void {
    if (outcome === undefined) this.awaitAnswer();
    else this.fail(writeFailure(outcome));
  }

  /**
   * `length` bytes read into `bytes` (shared by every socket: decoded or
   * copied here).  While the request is being written they are kept for
   * the answer phase, as a Readable without 'data' listener keeps them:
   * as many as can decide the answer, the rest is dropped.
   */
  received(bytes: Buffer, length: number): void {
    if (this.phase === Phase.Answer) {
      this.answerChunk(bytes, length, false);
    } else if (this.phase === Phase.Send && this.earlyBytes < ANSWER_DECIDED_WITHIN) {
      (this.early ??= []).push(Buffer.from(bytes.subarray(0, length)));
      this.earlyBytes += length;
    }
  }

  /** The answer's next chunk, the first `length` bytes of `bytes` (`owned`: not the shared buffer). */
  private answerChunk(bytes: Buffer, length: number, owned: boolean): void {
    if (this.reader === undefined) {
      const whole = wholeAnswer(bytes, length);
      if (whole !== undefined) {
        this.answered(whole);
        return;
      }
      this.reader = new NetstringReader(MAX_RESPONSE);
    }
    // the reader keeps its chunks until the netstring is complete
    const result = this.reader.push(owned ? bytes : Buffer.from(bytes.subarray(0, length)));
    if (result === undefined) {
      this.arm(this.timeouts.betweenResponseChunksMs);
      return;
    }
    const answer = qmqpAnswer(result);
    if (answer instanceof ActionFailure) this.fail(answer);
    else this.answered(answer);
  }

  ended(): void {
    if (this.phase === Phase.Answer) this.fail(relayFailed(PREMATURE_CLOSE));
  }

  timedOut(): void {
    if (this.phase === Phase.Connect) this.fail(new ActionFailure(Responses.connectFailed, 'Connect timeout'));
    else if (this.phase === Phase.Answer) this.fail(relayFailed('Connect timeout'));
  }

  private send(): void {
    this.disarm();
    this.phase = Phase.Send;
    // straight to the socket's handle: nothing else writes to it
    this.write = writeGathered(this.socket, this.request, this.timeouts.sendStallMs, this, true);
  }

  private awaitAnswer(): void {
    const { socket, early } = this;
    this.phase = Phase.Answer;
    if (!(socket instanceof RawPipe)) {
      socket.on('end', onSocketEnd);
      socket.on('close', onSocketEnd);
    }
    // a socket destroyed while the request was written (a read error such as
    // ECONNRESET: the write then completes without error) delivers nothing
    // it read, as a destroyed Readable does not: the early answer is lost
    if (socket.destroyed) {
      this.ended();
      return;
    }
    if (early !== undefined) {
      // in the order they came; each arms the time limit between chunks
      this.early = undefined;
      for (const chunk of early) {
        this.answerChunk(chunk, chunk.length, true);
        if (this.phase !== Phase.Answer) return;
      }
    }
    if (socket.readableEnded) this.ended();
    else if (early === undefined) this.arm(this.timeouts.firstResponseByteMs);
  }

  private answered(answer: ActionResult): void {
    this.end({ kind: answer.response === Responses.malformedRelayResponse ? 'sent' : 'answered', result: answer });
  }

  private fail(e: ActionFailure): void {
    this.end({ kind: this.phase === Phase.Answer ? 'sent' : 'not-sent', result: { response: e.response, log: [e.message] } });
  }

  private end(attempt: RelayAttempt): void {
    this.phase = Phase.Done;
    this.subscriber.next(this.report === undefined ? attempt : withRelayReport(attempt, this.report));
    this.subscriber.complete();
  }

  /** One timer for the phase under way (onTimer asks the phase what it means). */
  private arm(ms: number): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = setTimeout(onTimer, ms, this);
  }

  private disarm(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** One subscription to relayToServer (or relayWithReport): opens the socket and starts a ServerAttempt (its teardown). */
function subscribeRelay(
  address: SocketAddress,
  request: readonly Buffer[],
  timeouts: RelayTimeouts,
  report: RelayReport | undefined,
  subscriber: Subscriber<RelayAttempt | ActionResult>,
): ServerAttempt | undefined {
  let socket: Socket | RawPipe;
  try {
    socket = openSocket(address);
  } catch (e) {
    const attempt: RelayAttempt = { kind: 'not-sent', result: { response: Responses.connectFailed, log: [(e as Error).message] } };
    subscriber.next(report === undefined ? attempt : withRelayReport(attempt, report));
    subscriber.complete();
    return undefined;
  }
  const attempt = new ServerAttempt(subscriber, socket instanceof RawPipe ? socket : (socket as AttemptSocket), request, timeouts, report);
  // a Unix socket is connected (or refused) by the connect call itself,
  // only its callback waits for the next loop turn: no timer needed
  attempt.start(address.family !== 'unix');
  return attempt;
}

/**
 * Relays `request` (the re-assembled request, as pieces) to `address` and
 * reads the answer.  Emits how it went (one RelayAttempt), then completes;
 * never errors.  One subscription does the whole attempt in three phases,
 * with one timer for the phase under way:
 * - connect: `connectMs` (`Zconnect failed`, log `Connect timeout`);
 * - send, one gathered write: `sendStallMs` without progress (`Zrelay
 *   failed`, log `Connect timeout`, sic), `Failed to write: …`;
 * - answer, one netstring of at most 256 bytes (an answer that comes in
 *   one chunk is decoded at once, others by the NetstringReader): `firstResponseByteMs` for
 *   the first chunk, `betweenResponseChunksMs` after each (`Connect
 *   timeout`), `Failed to receive: …`, `Peer closed the socket
 *   prematurely`, the netstring reader's errors.
 * The socket is closed once the attempt is over.  Unsubscribing closes it
 * too and clears the timer: nothing is emitted after that.
 *
 * The same as concat(connect, sendRequest, readQmqpResponse(socketChunks))
 * with their timeouts, but one subscription, one set of socket listeners
 * and one timer a phase where that chain took about 17 subscriptions; and
 * an object with methods (ServerAttempt) rather than closures per mail.
 */
export function relayToServer(address: SocketAddress, request: readonly Buffer[], timeouts: RelayTimeouts): Observable<RelayAttempt> {
  // a bound module function, not a literal per mail
  return new Observable<RelayAttempt>(subscribeRelay.bind(undefined, address, request, timeouts, undefined));
}

/**
 * The same attempt as relayToServer, but emits its result for the client
 * (`result` of the RelayAttempt) with `report` as its `relay`: the whole
 * `connect` to one server.  The same as relayToServer(…).pipe(map(…)),
 * without map's subscriber and closures per mail.
 */
export function relayWithReport(address: SocketAddress, request: readonly Buffer[], timeouts: RelayTimeouts, report: RelayReport): Observable<ActionResult> {
  return new Observable<ActionResult>(subscribeRelay.bind(undefined, address, request, timeouts, report));
}
