// Process signals as streams.
import { Observable, share } from 'rxjs';

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
  }).pipe(share());
}
