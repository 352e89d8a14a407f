// Stage: the request's bytes counted against the global receive budget.
import { Observable, type MonoTypeOperatorFunction } from 'rxjs';
import type { BudgetShare } from '../streams/receive-budget.js';

/**
 * Mirrors the chunks, counting each against the connection's `share` of
 * the receive budget (which may pause the socket).  Unsubscribing (the
 * request is complete, or abandoned) tells the share that reading is over;
 * its bytes stay counted until the share is released.  Completes and
 * errors with the chunks.
 */
export function countReceived(share: BudgetShare): MonoTypeOperatorFunction<Buffer> {
  return (chunks) =>
    new Observable<Buffer>((subscriber) => {
      const subscription = chunks.subscribe({
        next: (chunk) => {
          share.add(chunk.length);
          subscriber.next(chunk);
        },
        error: (e: unknown) => subscriber.error(e),
        complete: () => subscriber.complete(),
      });
      return () => {
        subscription.unsubscribe();
        share.doneReading();
      };
    });
}
