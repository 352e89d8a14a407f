// Stage: a client's bytes → its one request netstring, in one subscription.
import type { Socket } from 'node:net';
import { Observable } from '../rx.js';
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
 * a held connection gets at least `idleMs` more once it is resumed).  Errors with the socket's error.  Unsubscribing
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
    // the budget's resumes at the last (re)start of the timer
    let resumes = share.resumes;
    const onTimeout = (): void => {
      // held now, or resumed since the timer started: the limit starts over
      if (share.held || share.resumes !== resumes) {
        resumes = share.resumes;
        timer.refresh();
      } else subscriber.complete();
    };
    const timer = setTimeout(onTimeout, idleMs);
    const stopReading = readSocket(socket, subscriber, (chunk) => {
      share.add(chunk.length);
      resumes = share.resumes;
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
