// Stage: a mail's work, raced against its cancellation.
import { Observable, type OperatorFunction } from '../rx.js';

/**
 * Emits the source's first value; or, if `cancel$` emits first, what
 * `canceled` makes of that; then completes, unsubscribing from both (which
 * abandons the source's work: a relay, a child, a Lua coroutine).  Errors
 * with the source.
 *
 * The same as `race(source, cancel$.pipe(map(canceled))).pipe(take(1))`, in one
 * operator: a mail goes through it once, and the four operators cost a
 * measurable share of the per-connection work (about 3 µs and 2 KB).
 */
export function cancelOn<T, C, U = T>(cancel$: Observable<C>, canceled: (cause: C) => U): OperatorFunction<T, T | U> {
  return (source) =>
    new Observable<T | U>((subscriber) => {
      const done = (value: T | U): void => {
        subscriber.next(value);
        subscriber.complete();
      };
      // the source first, as race() does: an answer ready at once wins
      subscriber.add(
        source.subscribe({
          next: done,
          error: (e: unknown) => subscriber.error(e),
          complete: () => subscriber.complete(),
        }),
      );
      if (!subscriber.closed) subscriber.add(cancel$.subscribe((cause) => done(canceled(cause))));
    });
}
