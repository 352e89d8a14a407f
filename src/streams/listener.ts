// Listening sockets (docs/configuration.md) and the stream of accepted connections.
// qrelay accepts connections itself (accept4 when the socket is readable),
// so that at the connection limit it can stop accepting altogether: new
// clients then wait in the kernel's listen backlog, as with a busy
// original, instead of being accepted and reset.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { resolve } from 'node:path';
import { Observable, mergeMap, timer, type Subscription } from '../rx.js';
import { acceptConnection, closeFd, connectSocket, listenUnix, setNonBlocking, SystemError, watchReadable } from '../native/linux.js';
import type { ListenTarget } from '../policy.js';
import type { ClientConnection } from './client-pipe.js';
import { acceptedClient } from './client-socket.js';

/**
 * The listen backlog: the system's maximum (the kernel caps the request at
 * net.core.somaxconn), where the original asks for 64.  Clients are local
 * and each connection is one mail: a burst larger than the backlog would
 * make non-blocking clients fail with EAGAIN while the daemon has capacity
 * to spare a moment later.
 */
const BACKLOG = 65_535;
/** After an accept error (EMFILE …), how long the listener rests before it tries again. */
const ACCEPT_ERROR_PAUSE_MS = 1_000;

export interface Listener {
  /** The listening socket (non-blocking). */
  readonly fd: number;
  /** How logs and metrics name it: the path, `@name`, or `systemd`. */
  readonly name: string;
  /** The socket file this process created, removed at a clean exit if it is still the same file. */
  readonly ownFile: { readonly path: string; readonly ino: number } | undefined;
  /** The Lua handler this listener runs (index into the script's registrations). */
  readonly handler: number;
  readonly maxSize: number;
}

export interface Accepted {
  readonly socket: ClientConnection;
  readonly listener: Listener;
}

/** How a listen target is named in logs, metrics and `qrelay check`. */
export function listenTargetName(target: ListenTarget): string {
  if (target.kind === 'abstract') return '@' + target.name.toString('latin1');
  return target.kind === 'path' ? target.path : 'systemd';
}

interface BoundSocket {
  readonly fd: number;
  readonly ownFile: Listener['ownFile'];
}

/**
 * Binds a listening socket on a path or abstract name, synchronously.  A
 * path (relative ones from the current directory, i.e. the config's folder
 * during startup) gets a stale file removed first — but never a socket a
 * live process still accepts on — and mode 0666.
 */
function bindSocket(target: Exclude<ListenTarget, { kind: 'systemd' }>): BoundSocket {
  if (target.kind === 'abstract') return { fd: listenUnix(target.name, true, BACKLOG, listenTargetName(target)), ownFile: undefined };
  const path = resolve(target.path);
  removeStale(path, target.path);
  const fd = listenUnix(Buffer.from(target.path, 'latin1'), false, BACKLOG, target.path);
  try {
    chmodSync(path, 0o666);
  } catch (e) {
    closeFd(fd);
    throw new Error(`Failed to chmod "${target.path}": ${(e as Error).message}`);
  }
  return { fd, ownFile: { path, ino: lstatSync(path).ino } };
}

/** Creates a listening socket on a path or abstract name, synchronously. */
export function bindListener(target: Exclude<ListenTarget, { kind: 'systemd' }>, handler: number, maxSize: number): Listener {
  const { fd, ownFile } = bindSocket(target);
  return { fd, name: listenTargetName(target), ownFile, handler, maxSize };
}

/** The listening descriptor alone (the primary of `--workers` binds, its workers accept). */
export function bindListeningFd(target: Exclude<ListenTarget, { kind: 'systemd' }>): number {
  return bindSocket(target).fd;
}

/** Adopts an inherited listening socket (systemd socket activation). */
export function adoptListener(fd: number, handler: number, maxSize: number, name = 'systemd'): Listener {
  setNonBlocking(fd);
  return { fd, name, ownFile: undefined, handler, maxSize };
}

/** Closes a listener that never served (startup failed). */
export function closeListener(listener: Listener): void {
  closeFd(listener.fd);
}

/** Whether a process accepts connections on the socket file at `path`. */
function isLiveSocket(path: string): boolean {
  try {
    const { fd } = connectSocket({ family: 'unix', name: Buffer.from(path, 'latin1'), abstract: false }, 'stream', false);
    closeFd(fd);
    return true;
  } catch (e) {
    // ECONNREFUSED: nobody listens (stale); anything else: not ours to judge
    return !(e instanceof SystemError);
  }
}

/**
 * Before binding a socket file: removes a stale file at `path`, but throws
 * when a live process accepts connections on it (`describe` names it).
 */
export function removeStale(path: string, describe: string): void {
  let isSocket: boolean;
  try {
    isSocket = lstatSync(path).isSocket();
  } catch {
    return;
  }
  if (isSocket && isLiveSocket(path)) throw new Error(`Failed to bind to ${describe}: ${describe} is in use by a running process`);
  try {
    unlinkSync(path);
  } catch {
    // bind() will report what is wrong
  }
}

/** Removes the socket files this process created (at a clean exit), if they are still ours. */
export function removeOwnFiles(listeners: Iterable<Listener>): void {
  for (const { ownFile } of listeners) {
    if (ownFile === undefined) continue;
    try {
      if (lstatSync(ownFile.path).ino === ownFile.ino) unlinkSync(ownFile.path);
    } catch {
      // already gone
    }
  }
}

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
        subscriber.next({ socket: acceptedClient(fd), listener });
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
