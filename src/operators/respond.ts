// Stage: the response netstring to the client, then close (docs/protocol.md).
import { Observable } from 'rxjs';
import { logDomain } from '../log.js';
import { systemErrorText } from '../native/linux.js';
import { encodeNetstring } from '../protocol/netstring.js';
import type { ResponseText } from '../protocol/responses.js';
import type { Client } from '../client.js';

/**
 * On subscription writes the response netstring and ends the connection;
 * emits nothing and completes once the bytes are flushed (the socket is
 * then destroyed), or at once, logging `Failed to write: …`, when the
 * socket is no longer writable or the write fails.  Never errors.
 * Unsubscribing does not stop the write: the connection's owner
 * (serveClient) destroys the socket when its stream ends.
 */
export function respond(client: Client, response: ResponseText): Observable<never> {
  return new Observable<never>((subscriber) => {
    const socket = client.socket;
    if (socket.destroyed || !socket.writable) {
      logDomain(client.domain, 'Failed to write: Broken pipe');
      subscriber.complete();
      return;
    }
    const onError = (error: Error): void => {
      logDomain(client.domain, `Failed to write: ${systemErrorText(error)}`);
      socket.destroy();
      subscriber.complete();
    };
    socket.once('error', onError);
    socket.end(encodeNetstring(response), () => {
      socket.off('error', onError);
      socket.destroy();
      subscriber.complete();
    });
  });
}
