// The client went away while its mail was being processed (qmqp.md §2.1):
// it sent more bytes, half-closed, closed, or its socket failed.
import { Observable } from 'rxjs';
import type { Client } from './peer-credentials.js';

export type CancelReason = 'canceled' | 'client error';

/** Emits once when the client is gone; `unread` bytes already count as "sent more". */
export function clientGone(client: Client, unread: Buffer): Observable<CancelReason> {
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
    return () => {
      socket.off('data', onGone);
      socket.off('end', onGone);
      socket.off('close', onGone);
      socket.off('error', onError);
    };
  });
}
