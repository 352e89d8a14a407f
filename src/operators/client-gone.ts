// The client went away while its mail was being processed (docs/actions.md):
// it sent more bytes, half-closed, closed, or its socket failed; or the
// daemon's shutdown grace period ran out.
import { Observable, type Subscriber } from '../rx.js';
import type { Client } from '../client.js';
import type { ClientConnection, ClientReader } from '../streams/client-pipe.js';

export type CancelReason = 'canceled' | 'client error';

/**
 * Where the connection that already watches the daemon's shutdown finds
 * the mail's listener: a mail in flight sets `onShutdown` while it is
 * subscribed and clears it when unsubscribed, and the connection calls it
 * when the shutdown comes.  One shutdown subscription per connection
 * instead of two (the Subject's subscriber, subscription and teardown
 * closure per mail are gone).
 */
export interface ShutdownHook {
  onShutdown: (() => void) | undefined;
}

/**
 * Emits the reason whenever the mail must be cancelled: `canceled` when the
 * client sends more bytes (at once, on subscription, if `unread` holds
 * some), half-closes or closes, or when `shutdown.onShutdown` is called
 * (the daemon's shutdown); `client error` when its socket fails.  May emit
 * more than once (cancelOn takes the first); never completes or errors on
 * its own.  It is the socket's reader while subscribed; unsubscribing
 * stops being it and clears `shutdown.onShutdown`.
 */
export function clientGone(client: Client, unread: Buffer, shutdown: ShutdownHook): Observable<CancelReason> {
  // a bound module function and a class, not literals per mail (see GoneWatch)
  return new Observable<CancelReason>(subscribeGone.bind(undefined, client.socket, unread, shutdown));
}

function subscribeGone(socket: ClientConnection, unread: Buffer, shutdown: ShutdownHook, subscriber: Subscriber<CancelReason>): GoneWatch | undefined {
  if (unread.length > 0) {
    subscriber.next('canceled');
    return undefined;
  }
  return new GoneWatch(socket, shutdown, subscriber);
}

/**
 * One subscription's listeners; the work is in methods, not closures made
 * per mail (see serve-client.ts, Connection).
 */
class GoneWatch implements ClientReader {
  private readonly onShutdown = this.end.bind(this);

  constructor(
    private readonly socket: ClientConnection,
    private readonly shutdown: ShutdownHook,
    private readonly subscriber: Subscriber<CancelReason>,
  ) {
    socket.reader = this;
    shutdown.onShutdown = this.onShutdown;
  }

  /** The client sent more bytes. */
  data(): void {
    this.subscriber.next('canceled');
  }

  /** The client closed or half-closed its side (or the daemon shuts down). */
  end(): void {
    this.subscriber.next('canceled');
  }

  failed(): void {
    this.subscriber.next('client error');
  }

  unsubscribe(): void {
    if (this.shutdown.onShutdown === this.onShutdown) this.shutdown.onShutdown = undefined;
    if (this.socket.reader === this) this.socket.reader = undefined;
  }
}
