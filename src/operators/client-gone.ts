// The client went away while its mail was being processed (docs/actions.md):
// it sent more bytes, half-closed, closed, or its socket failed; or the
// daemon's shutdown grace period ran out.
import type { Socket } from 'node:net';
import { Observable, type Subscriber, type Subscription } from '../rx.js';
import type { Client } from '../client.js';

export type CancelReason = 'canceled' | 'client error';

/**
 * Emits the reason whenever the mail must be cancelled: `canceled` when the
 * client sends more bytes (at once, on subscription, if `unread` holds
 * some), half-closes or closes, or when `shutdown$` emits; `client error`
 * when its socket fails.  May emit more than once (cancelOn takes the
 * first); never completes or errors on its own.  Unsubscribing removes its
 * socket listeners and unsubscribes from `shutdown$`.
 */
export function clientGone(client: Client, unread: Buffer, shutdown$: Observable<unknown>): Observable<CancelReason> {
  // a bound module function and a class, not literals per mail (see GoneWatch)
  return new Observable<CancelReason>(subscribeGone.bind(undefined, client.socket, unread, shutdown$));
}

function subscribeGone(socket: Socket, unread: Buffer, shutdown$: Observable<unknown>, subscriber: Subscriber<CancelReason>): GoneWatch | undefined {
  if (unread.length > 0) {
    subscriber.next('canceled');
    return undefined;
  }
  return new GoneWatch(socket, shutdown$, subscriber);
}

/**
 * One subscription's listeners; the work is in methods, not closures made
 * per mail (see serve-client.ts, Connection).
 */
class GoneWatch {
  private readonly onGone = this.gone.bind(this);
  private readonly onError = this.failed.bind(this);
  private readonly shutdown: Subscription;

  constructor(
    private readonly socket: Socket,
    shutdown$: Observable<unknown>,
    private readonly subscriber: Subscriber<CancelReason>,
  ) {
    socket.on('data', this.onGone);
    socket.on('end', this.onGone);
    socket.on('close', this.onGone);
    socket.on('error', this.onError);
    this.shutdown = shutdown$.subscribe(this.onGone);
  }

  private gone(): void {
    this.subscriber.next('canceled');
  }

  private failed(): void {
    this.subscriber.next('client error');
  }

  unsubscribe(): void {
    this.shutdown.unsubscribe();
    const socket = this.socket;
    socket.off('data', this.onGone);
    socket.off('end', this.onGone);
    socket.off('close', this.onGone);
    socket.off('error', this.onError);
  }
}
