// Listening sockets (docs/configuration.md) and the stream of accepted connections.
// qrelay accepts connections itself (accept4 when the socket is readable),
// so that at the connection limit it can stop accepting altogether: new
// clients then wait in the kernel's listen backlog, as with a busy
// original, instead of being accepted and reset.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { Socket } from 'node:net';
import { Observable, mergeMap, timer, type Subscription } from 'rxjs';
import { acceptConnection, closeFd, listenUnix, setNonBlocking, watchReadable } from '../native/linux.js';
import type { ListenTarget } from '../lua/engine.js';

const BACKLOG = 64;
/** After an accept error (EMFILE …), how long the listener rests before it tries again. */
const ACCEPT_ERROR_PAUSE_MS = 1_000;

export interface Listener {
  /** The listening socket (non-blocking). */
  readonly fd: number;
  /** The Lua handler this listener runs (index into the script's registrations). */
  readonly handler: number;
  readonly maxSize: number;
}

export interface Accepted {
  readonly socket: Socket;
  readonly listener: Listener;
}

/** Creates a listening socket on a path or abstract name, synchronously. */
export function bindListener(target: Exclude<ListenTarget, { kind: 'systemd' }>, handler: number, maxSize: number): Listener {
  return { fd: bindListeningFd(target), handler, maxSize };
}

/** The listening descriptor alone (the primary of `--workers` binds, its workers accept). */
export function bindListeningFd(target: Exclude<ListenTarget, { kind: 'systemd' }>): number {
  let fd: number;
  if (target.kind === 'abstract') {
    fd = listenUnix(target.name, true, BACKLOG, '@' + target.name.toString('latin1'));
  } else {
    const path = target.path;
    if (path.startsWith('/')) removeStale(path);
    fd = listenUnix(Buffer.from(path, 'latin1'), false, BACKLOG, path);
    if (path.startsWith('/')) {
      try {
        chmodSync(path, 0o666);
      } catch (e) {
        closeFd(fd);
        throw new Error(`Failed to chmod "${path}": ${(e as Error).message}`);
      }
    }
  }
  return fd;
}

/** Adopts an inherited listening socket (systemd socket activation). */
export function adoptListener(fd: number, handler: number, maxSize: number): Listener {
  setNonBlocking(fd);
  return { fd, handler, maxSize };
}

/** Closes a listener that never served (startup failed). */
export function closeListener(listener: Listener): void {
  closeFd(listener.fd);
}

function removeStale(path: string): void {
  try {
    lstatSync(path);
  } catch {
    return;
  }
  try {
    unlinkSync(path);
  } catch {
    // bind() will report what is wrong
  }
}

function ignoreError(): void {}

/** What the accept source needs to know from the connection limits. */
export interface AcceptGate {
  /** Whether another connection may be accepted now (emits the current state on subscribe). */
  readonly open$: Observable<boolean>;
  /** Reports an accept error (e.g. EMFILE); the listener rests a moment after it. */
  acceptFailed(error: Error): void;
}

/**
 * Every connection accepted on any of the listeners, until unsubscribed
 * (which closes them).  While `gate.open$` says no, the listening sockets
 * are not even polled.  Listeners may keep arriving: a script that kept a
 * reference to qmqp_listen can add one at runtime.
 */
export function accepted$(listeners: Observable<Listener>, gate: AcceptGate): Observable<Accepted> {
  return listeners.pipe(mergeMap((listener) => acceptOn(listener, gate)));
}

function acceptOn(listener: Listener, gate: AcceptGate): Observable<Accepted> {
  return new Observable<Accepted>((subscriber) => {
    let open = false;
    let resting: Subscription | undefined;
    const drain = (): void => {
      // `open` may turn false while a connection is handed on (the limit reached)
      while (open && resting === undefined && !subscriber.closed) {
        let fd: number | undefined;
        try {
          fd = acceptConnection(listener.fd);
        } catch (e) {
          gate.acceptFailed(e as Error);
          watch.stop();
          resting = timer(ACCEPT_ERROR_PAUSE_MS).subscribe(() => {
            resting = undefined;
            if (open) resume();
          });
          return;
        }
        if (fd === undefined) return;
        const socket = new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
        // every stage listens for the errors it cares about; this one
        // only makes sure no error is ever unhandled (which would crash)
        socket.on('error', ignoreError);
        subscriber.next({ socket, listener });
      }
    };
    const watch = watchReadable(listener.fd, drain);
    // connections that queued up while the gate was closed are taken at once
    const resume = (): void => {
      watch.start();
      setImmediate(drain);
    };
    const gateSubscription = gate.open$.subscribe((isOpen) => {
      open = isOpen;
      if (resting !== undefined) return;
      if (isOpen) resume();
      else watch.stop();
    });
    return () => {
      gateSubscription.unsubscribe();
      resting?.unsubscribe();
      watch.close();
      closeFd(listener.fd);
    };
  });
}
