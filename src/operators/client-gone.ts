// The client went away while its mail was being processed (docs/actions.md):
// it sent more bytes, half-closed, closed, or its socket failed; or the
// daemon's shutdown grace period ran out.
import { Observable } from 'rxjs';
import type { Client } from './peer-credentials.js';

export type CancelReason = 'canceled' | 'client error';

/**
 * Emits (at most once per cause) when the mail must be cancelled: the
 * client is gone, or `shutdown$` emits.  `unread` bytes already count as
 * "sent more".  Unsubscribing removes its listeners.
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
