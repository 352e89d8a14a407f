// The client went away while its mail was being processed (docs/actions.md):
// it sent more bytes, half-closed, closed, or its socket failed; or the
// daemon's shutdown grace period ran out.
import { Observable } from '../rx.js';
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
  return new Observable<CancelReason>((subscriber) => {
    const socket = client.socket;
    if (unread.length > 0) {
      subscriber.next('canceled');
      return;
    }
    const onGone = (): void => subscriber.next('canceled');
    const onError = (): void => subscriber.next('client error');
    socket.on('data', onGone);
    socket.on('end', onGone);
    socket.on('close', onGone);
    socket.on('error', onError);
    const shutdown = shutdown$.subscribe(onGone);
    return () => {
      shutdown.unsubscribe();
      socket.off('data', onGone);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onError);
    };
  });
}
