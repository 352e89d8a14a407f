// Stage: a client's bytes → its one request netstring, in one subscription.
import { Observable, type Subscriber } from '../rx.js';
import { NetstringReader, type NetstringReadResult } from '../protocol/netstring-reader.js';
import type { ClientConnection, ClientReader } from '../streams/client-pipe.js';
import type { BudgetShare } from '../streams/receive-budget.js';
import { keepTimerList } from '../streams/timer-lists.js';

/**
 * The state of one subscription, its event handlers as methods rather
 * than function literals made per connection (see serve-client.ts,
 * Connection).
 */
class RequestRead implements ClientReader {
  private readonly reader: NetstringReader;
  /** The budget's resumes at the last (re)start of the timer. */
  private resumes: number;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly socket: ClientConnection,
    private readonly share: BudgetShare,
    private readonly subscriber: Subscriber<NetstringReadResult>,
    idleMs: number,
    maxSize: number,
  ) {
    this.reader = new NetstringReader(maxSize);
    this.resumes = share.resumes;
    this.timer = setTimeout(idleTimeUp, idleMs, this);
    socket.reader = this;
    if (socket.readableEnded || socket.destroyed) subscriber.complete();
  }

  data(chunk: Buffer): void {
    this.share.add(chunk.length);
    this.resumes = this.share.resumes;
    this.timer.refresh();
    const result = this.reader.push(chunk);
    if (result === undefined) {
      // where the connection reads into learns where the request ends
      this.socket.area.expectEnd(this.reader.end);
      return;
    }
    this.subscriber.next(result);
    this.subscriber.complete();
  }

  end(): void {
    this.subscriber.complete();
  }

  failed(error: NodeJS.ErrnoException): void {
    this.subscriber.error(error);
  }

  idle(): void {
    // held now, or resumed since the timer started: the limit starts over
    if (this.share.held || this.share.resumes !== this.resumes) {
      this.resumes = this.share.resumes;
      this.timer.refresh();
    } else this.subscriber.complete();
  }

  unsubscribe(): void {
    clearTimeout(this.timer);
    if (this.socket.reader === this) this.socket.reader = undefined;
    this.share.doneReading();
  }
}

function idleTimeUp(read: RequestRead): void {
  read.idle();
}

/**
 * Reads `socket` until one netstring of at most `maxSize` bytes is complete
 * or broken: emits the NetstringReader's result, then completes.  It is
 * the socket's reader while subscribed.  Every chunk is counted against
 * `share` of the receive budget first (which may pause the socket).  Completes without a value when the client half-closes
 * or closes first, or sends nothing for `idleMs` (time during which
 * `share.held` says the budget holds the connection back does not count:
 * a held connection gets at least `idleMs` more once it is resumed).  Errors with the socket's error.  Unsubscribing
 * stops being the socket's reader, clears its timer and tells the share that
 * reading is over (its bytes stay counted until the share is released).
 *
 * The same as socketChunks → countReceived → idleTimeout → decodeNetstring,
 * fused: every connection subscribes to it and every chunk passes through
 * it, and one subscriber with one timer costs a fraction of four.
 */
export function receiveRequest(socket: ClientConnection, share: BudgetShare, idleMs: number, maxSize: number): Observable<NetstringReadResult> {
  // each connection's idle timer then joins a list of timers that stays (src/streams/timer-lists.ts)
  keepTimerList(idleMs);
  // a bound module function, not a literal per connection (see RequestRead)
  return new Observable<NetstringReadResult>(subscribeRequest.bind(undefined, socket, share, idleMs, maxSize));
}

function subscribeRequest(socket: ClientConnection, share: BudgetShare, idleMs: number, maxSize: number, subscriber: Subscriber<NetstringReadResult>): RequestRead {
  return new RequestRead(socket, share, subscriber, idleMs, maxSize);
}
