// Stage: the response netstring to the client, then close (docs/protocol.md).
import { Observable, type Subscriber } from '../rx.js';
import { logDomain } from '../log.js';
import { systemErrorText } from '../native/linux.js';
import type { ResponseText } from '../protocol/responses.js';
import type { Client } from '../client.js';
import type { ClientWriteListener } from '../streams/client-pipe.js';

/**
 * On subscription writes the response netstring and closes the connection;
 * emits nothing and never errors.  Completes at once when the kernel took
 * the bytes in the one write (the usual case: a few bytes into an empty
 * socket buffer; the socket is destroyed right away, its peer reads the
 * answer, then the end of the connection); otherwise once the rest is
 * written (the socket is then destroyed).
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
  // the netstring as a latin1 string: written to the socket without
  // making Buffers (encodeNetstring's three); a ResponseText is latin1
  // text, one byte per character, so its length is its byte count
  const outcome = socket.write(`${response.length}:${response},`);
  if (outcome === 'pending') {
    socket.afterWrite(new PendingAnswer(client, subscriber));
    return;
  }
  // written (or failed) within the call: nothing is left to wait for
  if (outcome !== 'written') logDomain(client.domain, `Failed to write: ${systemErrorText(outcome)}`);
  socket.destroy();
  subscriber.complete();
}

/** An answer the kernel did not take at once (a client that does not read): the connection closes once it is written. */
class PendingAnswer implements ClientWriteListener {
  constructor(
    private readonly client: Client,
    private readonly subscriber: Subscriber<never>,
  ) {}

  written(error: NodeJS.ErrnoException | undefined): void {
    if (error !== undefined) logDomain(this.client.domain, `Failed to write: ${systemErrorText(error)}`);
    this.client.socket.destroy();
    this.subscriber.complete();
  }
}
