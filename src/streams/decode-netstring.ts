// Byte chunks → one netstring (or the reason it is broken): the client's request, a relay's answer.
import { Observable, type OperatorFunction } from '../rx.js';
import { NetstringReader, type NetstringReadResult } from '../protocol/netstring-reader.js';

/**
 * Feeds chunks to a NetstringReader and emits its one result (a complete
 * netstring with the bytes received after it, or why it is broken: too
 * large, malformed, garbage after the payload), then completes, unsubscribing from the chunks.
 * Completes without a value when the chunks end first (EOF before the
 * netstring was complete); errors when they error.  Unsubscribing
 * unsubscribes from the chunks; the partial netstring is dropped.
 */
export function decodeNetstring(maxLength: number): OperatorFunction<Buffer, NetstringReadResult> {
  return (chunks) =>
    new Observable<NetstringReadResult>((subscriber) => {
      const reader = new NetstringReader(maxLength);
      const subscription = chunks.subscribe({
        next: (chunk) => {
          const result = reader.push(chunk);
          if (result === undefined) return;
          subscriber.next(result);
          subscriber.complete();
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return subscription;
    });
}
