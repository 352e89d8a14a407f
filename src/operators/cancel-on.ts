// Stage: a mail's work, raced against its cancellation.
import { Observable, type OperatorFunction, type Subscriber } from '../rx.js';

/**
 * Emits the source's first value; or, if `cancel$` emits first, what
 * `canceled` makes of that; then completes, unsubscribing from both (which
 * abandons the source's work: a relay, a child, a Lua coroutine).  Errors
 * with the source.
 *
 * The same as `race(source, cancel$.pipe(map(canceled))).pipe(take(1))`, in one
 * operator: a mail goes through it once, and the four operators cost a
 * measurable share of the per-connection work (about 3 µs and 2 KB).
 * Its parts are methods and bound module functions, not function literals
 * created per mail (see serve-client.ts, Connection).
 */
export function cancelOn<T, C, U = T>(cancel$: Observable<C>, canceled: (cause: C) => U): OperatorFunction<T, T | U> {
  return (raceWith<T, C, U>).bind(undefined, cancel$, canceled);
}

function raceWith<T, C, U>(cancel$: Observable<C>, canceled: (cause: C) => U, source: Observable<T>): Observable<T | U> {
  return new Observable<T | U>((subscribeRace<T, C, U>).bind(undefined, source, cancel$, canceled));
}

function subscribeRace<T, C, U>(source: Observable<T>, cancel$: Observable<C>, canceled: (cause: C) => U, subscriber: Subscriber<T | U>): void {
  const race = new Race(subscriber, canceled);
  // the source first, as race() does: an answer ready at once wins
  subscriber.add(source.subscribe(race));
  if (!subscriber.closed) subscriber.add(cancel$.subscribe(new Cancellation(race)));
}

/** The observer of the source. */
class Race<T, C, U> {
  constructor(
    private readonly subscriber: Subscriber<T | U>,
    readonly canceled: (cause: C) => U,
  ) {}

  next(value: T | U): void {
    this.subscriber.next(value);
    this.subscriber.complete();
  }

  error(e: unknown): void {
    this.subscriber.error(e);
  }

  complete(): void {
    this.subscriber.complete();
  }
}

/** The observer of `cancel$`. */
class Cancellation<T, C, U> {
  constructor(private readonly race: Race<T, C, U>) {}

  next(cause: C): void {
    this.race.next(this.race.canceled(cause));
  }
}
