// One connection as one stream: netstring → QMQP → policy → action →
// response → Pond log, cancelled when the client goes or the daemon stops.
//
// Every connection builds this pipeline anew, so it is kept short: each
// operator costs about 0.5–1 µs and a few hundred bytes of garbage per
// connection.  Synchronous steps (parsing the request) are plain calls
// inside the stage that needs them, timeouts use the fused operator
// idleTimeout, a mail from the policy to its answer is the one operator
// processMail, and serveClient itself is one Observable (not mergeMap →
// catchError → finalize).
import { EMPTY, Observable, type Subscriber } from '../rx.js';
import { logDomain } from '../log.js';
import type { Policy } from '../policy.js';
import { describeNetstringError, type NetstringReadResult } from '../protocol/netstring-reader.js';
import { parseQmqpRequest } from '../protocol/qmqp.js';
import type { ServerBackoff } from '../actions/server-backoff.js';
import { systemErrorText } from '../native/linux.js';
import type { BudgetShare, ReceiveBudget } from '../streams/receive-budget.js';
import type { Timeouts } from '../timeouts.js';
import type { ShutdownHook } from './client-gone.js';
import { parseFailureResponse } from './parse-qmqp.js';
import { processMail } from './process-mail.js';
import { receiveRequest } from './receive-request.js';
import type { Client } from '../client.js';
import { gauges } from '../metrics.js';
import { messageTooLarge } from '../protocol/responses.js';
import type { MailLogger } from './pond-log.js';
import { respond } from './respond.js';

export interface ServeOptions {
  readonly policy: Policy;
  readonly mailLog: MailLogger | undefined;
  /** Emits when the daemon shuts down: mails in flight are cancelled. */
  readonly shutdown$: Observable<unknown>;
  readonly timeouts: Timeouts;
  /** Which downstream servers `connect` skips for now (per process). */
  readonly backoff: ServerBackoff;
  /** Request bytes all connections may hold before the largest stop being read. */
  readonly receiveBudget: ReceiveBudget;
}

/** The answer to one received netstring: a processed mail, an immediate D, or nothing (broken framing). */
function serveRequest(client: Client, read: NetstringReadResult, options: ServeOptions, shutdown: ShutdownHook): Observable<never> {
  if (read.kind !== 'complete') {
    logDomain(client.domain, describeNetstringError(read));
    // a client still reading learns why (the original closes silently)
    return read.kind === 'too-large' ? respond(client, messageTooLarge(client.listener.maxSize)) : EMPTY;
  }
  const parsed = parseQmqpRequest(read.payload);
  return parsed.kind === 'request' ? processMail(client, parsed.request, read.unread, options, shutdown) : respond(client, parseFailureResponse(parsed));
}

/**
 * One connection's subscription to serveClient, its event handlers as
 * methods: every connection runs them, and function literals made per
 * connection cost their allocation and, where V8 has no code for them
 * yet, a lazy compile.  The client-side stages, the policy call and the
 * Lua mail session were converted this way together: about 0.95x the CPU
 * per 2 KB discard, 0.97-1.05x per relayed mail (same-run A/B, noisy).
 * (The hope that methods would also keep their optimised code through a
 * full collection in a quiet pause did not hold: src/streams/release-memory.ts.)
 * The observer of the request read, and the teardown that ends the connection.
 */
class Connection implements ShutdownHook {
  // complete once the request is read (or the reading ended without one) and its answer is written
  private reading = true;
  private answering = false;
  private readonly share: BudgetShare;
  /** The observer of the daemon's shutdown and of the answer (one object for both). */
  private readonly watch = new ConnectionWatch(this);
  /** The mail in flight's shutdown listener (clientGone sets it): the one shutdown$ subscription serves both. */
  onShutdown: (() => void) | undefined = undefined;

  constructor(
    private readonly client: Client,
    private readonly options: ServeOptions,
    private readonly subscriber: Subscriber<never>,
  ) {
    gauges.connectionsInFlight++;
    const socket = client.socket;
    this.share = options.receiveBudget.open(socket);
    subscriber.add(receiveRequest(socket, this.share, options.timeouts.receiveIdleMs, client.listener.maxSize).subscribe(this));
    // a client still sending its request when the daemon stops is dropped
    // without an answer (a mail in flight is cancelled by processMail itself,
    // with its Pond record); otherwise a client trickling bytes would hold
    // the shutdown for as long as it likes
    subscriber.add(options.shutdown$.subscribe(this.watch));
    subscriber.add(this);
  }

  /** The request read: answer it. */
  next(read: NetstringReadResult): void {
    // what the client sends from now on is read into the window it has (only to notice it), not kept
    this.client.socket.area.stopGrowing();
    this.answering = true;
    this.subscriber.add(serveRequest(this.client, read, this.options, this).subscribe(this.watch));
  }

  /** The socket failed while the request was read, or while it was answered. */
  error(e: unknown): void {
    if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') logDomain(this.client.domain, `read() failed: ${systemErrorText(e)}`);
    this.subscriber.complete();
  }

  /** The reading is over. */
  complete(): void {
    this.reading = false;
    if (!this.answering) this.subscriber.complete();
  }

  answered(): void {
    this.answering = false;
    if (!this.reading) this.subscriber.complete();
  }

  shutdown(): void {
    if (!this.answering) this.subscriber.complete();
    else this.onShutdown?.();
  }

  /** The stream ends: the connection is closed. */
  unsubscribe(): void {
    gauges.connectionsInFlight--;
    this.share.release();
    this.client.socket.destroy();
  }
}

/** The observer of a connection's answer (error, complete) and of the daemon's shutdown (next). */
class ConnectionWatch {
  constructor(private readonly connection: Connection) {}

  next(): void {
    this.connection.shutdown();
  }

  error(e: unknown): void {
    this.connection.error(e);
  }

  complete(): void {
    this.connection.answered();
  }
}

/**
 * Serves the one request of a connection: reads one netstring (counted
 * against the receive budget, at most `listener.maxSize` bytes), answers
 * it (a processed mail, or an immediate D for a request that is too large
 * or does not parse as QMQP) and closes the connection.  Emits nothing and
 * never errors; completes when the answer is written, or without an answer
 * when the client is silent for `receiveIdleMs` (while the budget does not
 * hold it back), closes before the netstring is complete, sends a
 * malformed netstring, or its socket fails (logged unless it was a reset).
 * Bytes sent after the request, or the client's end of the connection,
 * cancel a mail in flight (no answer), as does `shutdown$`; `shutdown$`
 * also completes it, without an answer, while the request is still being
 * received.
 * Unsubscribing abandons whatever is under way; when the stream ends
 * either way the socket is destroyed and the budget share released.
 */
export function serveClient(client: Client, options: ServeOptions): Observable<never> {
  // a bound module function, not a literal per connection (see Connection)
  return new Observable<never>(subscribeConnection.bind(undefined, client, options));
}

function subscribeConnection(client: Client, options: ServeOptions, subscriber: Subscriber<never>): void {
  new Connection(client, options, subscriber);
}
