// Process signals as streams.  Handlers are installed when subscribed;
// unsubscribing restores the default action (a second SIGTERM kills).
import { Observable, ReplaySubject, type Subscription } from '../rx.js';

export type SignalName = 'SIGTERM' | 'SIGINT' | 'SIGQUIT' | 'SIGHUP';

const SIGNAL_NUMBERS: Record<SignalName, number> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGTERM: 15 };

export function signalNumber(name: SignalName): number {
  return SIGNAL_NUMBERS[name];
}

/** Emits the name of each delivery of any of `names` while subscribed. */
export function signals$(...names: SignalName[]): Observable<SignalName> {
  return new Observable<SignalName>((subscriber) => {
    const handlers = names.map((name) => {
      const handler = (): void => subscriber.next(name);
      process.on(name, handler);
      return [name, handler] as const;
    });
    return () => handlers.forEach(([name, handler]) => process.off(name, handler));
  });
}

/**
 * Catches `names` from now on and keeps the latest delivery until someone
 * subscribes: signals that arrive during startup are handled right after it.
 */
export function pendingSignals(...names: SignalName[]): { signals$: Observable<SignalName>; stop(): void } {
  const latest = new ReplaySubject<SignalName>(1);
  const subscription: Subscription = signals$(...names).subscribe(latest);
  return { signals$: latest.asObservable(), stop: () => subscription.unsubscribe() };
}
