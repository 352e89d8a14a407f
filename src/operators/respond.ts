// Stage: the response netstring to the client, then close (docs/protocol.md).
import { Observable, type Subscriber } from '../rx.js';
import { logDomain } from '../log.js';
import { systemErrorText } from '../native/linux.js';
import type { ResponseText } from '../protocol/responses.js';
import type { Client } from '../client.js';

/**
 * On subscription writes the response netstring and closes the connection;
 * emits nothing and never errors.  Completes at once when the kernel took
 * the bytes in the one write (the usual case: a few bytes into an empty
 * socket buffer; the socket is destroyed right away, its peer reads the
 * answer, then the end of the connection); otherwise once the rest is
 * flushed and the write side shut down (the socket is then destroyed).
 * When the socket is no longer writable or the write fails, logs `Failed
 * to write: …` and completes at once.  Unsubscribing does not stop a
 * pending write: the connection's owner (serveClient) destroys the socket
 * when its stream ends.
 */
export function respond(client: Client, response: ResponseText): Observable<never> {
  // a bound module function, not a literal per mail (see serve-client.ts, Connection)
  return new Observable<never>(writeResponse.bind(undefined, client, response));
}

/** The usual case (all written at once) in this function; the rare wait for a flush in its own literals. */
function writeResponse(client: Client, response: ResponseText, subscriber: Subscriber<never>): void {
  const socket = client.socket;
  if (socket.destroyed || !socket.writable) {
    logDomain(client.domain, 'Failed to write: Broken pipe');
    subscriber.complete();
    return;
  }
  // the netstring as a latin1 string: Node writes it to the socket without
  // making Buffers (encodeNetstring's three); a ResponseText is latin1
  // text, one byte per character, so its length is its byte count
  socket.write(`${response.length}:${response},`, 'latin1');
  // written (or failed) within the call: nothing is left to wait for
  if (socket.writableLength === 0) {
    if (socket.errored !== null) logDomain(client.domain, `Failed to write: ${systemErrorText(socket.errored)}`);
    socket.destroy();
    subscriber.complete();
    return;
  }
  const onError = (error: Error): void => {
    logDomain(client.domain, `Failed to write: ${systemErrorText(error)}`);
    socket.destroy();
    subscriber.complete();
  };
  socket.once('error', onError);
  socket.end(() => {
    socket.off('error', onError);
    socket.destroy();
    subscriber.complete();
  });
}
