// Stage: the response netstring to the client, then close (docs/protocol.md).
import { Observable } from 'rxjs';
import { logDomain } from '../log.js';
import { systemErrorText } from '../native/linux.js';
import { encodeNetstring } from '../protocol/netstring.js';
import type { ResponseText } from '../protocol/responses.js';
import type { Client } from './peer-credentials.js';

/** Writes the response and closes the connection; completes when done. */
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
