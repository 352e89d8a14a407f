// Stage: a client's bytes → its one request netstring, in one subscription.
import type { Socket } from 'node:net';
import { Observable } from 'rxjs';
import { NetstringReader, type NetstringReadResult } from '../protocol/netstring-reader.js';
import type { BudgetShare } from '../streams/receive-budget.js';
import { readSocket } from '../streams/socket-chunks.js';

/**
 * Reads `socket` until one netstring of at most `maxSize` bytes is complete
 * or broken: emits the NetstringReader's result, then completes.  Every
 * chunk is counted against `share` of the receive budget first (which may
 * pause the socket).  Completes without a value when the client half-closes
 * or closes first, or sends nothing for `idleMs` (time during which
 * `share.held` says the budget holds the connection back does not count:
 * the limit starts over).  Errors with the socket's error.  Unsubscribing
 * removes its socket listeners, clears its timer and tells the share that
 * reading is over (its bytes stay counted until the share is released).
 *
 * The same as socketChunks → countReceived → idleTimeout → decodeNetstring,
 * fused: every connection subscribes to it and every chunk passes through
 * it, and one subscriber with one timer costs a fraction of four.
 */
export function receiveRequest(socket: Socket, share: BudgetShare, idleMs: number, maxSize: number): Observable<NetstringReadResult> {
  return new Observable<NetstringReadResult>((subscriber) => {
    const reader = new NetstringReader(maxSize);
    const onTimeout = (): void => {
      if (share.held) timer.refresh();
      else subscriber.complete();
    };
    const timer = setTimeout(onTimeout, idleMs);
    const stopReading = readSocket(socket, subscriber, (chunk) => {
      share.add(chunk.length);
      timer.refresh();
      const result = reader.push(chunk);
      if (result === undefined) return;
      subscriber.next(result);
      subscriber.complete();
    });
    return () => {
      clearTimeout(timer);
      stopReading();
      share.doneReading();
    };
  });
}
