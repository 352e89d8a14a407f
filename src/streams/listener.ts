// Listening sockets (docs/configuration.md) and the stream of accepted connections.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { Observable, mergeMap } from 'rxjs';
import { listenUnix } from '../native/linux.js';
import { logPlain } from '../log.js';
import type { ListenTarget } from '../lua/engine.js';

const BACKLOG = 64;

export interface Listener {
  readonly server: Server;
  /** The Lua handler this listener runs (index into the script's registrations). */
  readonly handler: number;
  readonly maxSize: number;
}

export interface Accepted {
  readonly socket: Socket;
  readonly listener: Listener;
}

function serverOn(fd: number): Server {
  const server = createServer({ allowHalfOpen: true, pauseOnConnect: false });
  server.listen({ fd, backlog: BACKLOG });
  // e.g. EMFILE: logged like the original does; the listener keeps going
  server.on('error', (e: NodeJS.ErrnoException) => logPlain(`Failed to accept connection: ${e.message}`));
  return server;
}

/** Creates a listening socket on a path or abstract name, synchronously. */
export function bindListener(target: Exclude<ListenTarget, { kind: 'systemd' }>, handler: number, maxSize: number): Listener {
  return { server: serverOn(bindListeningFd(target)), handler, maxSize };
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
        throw new Error(`Failed to chmod "${path}": ${(e as Error).message}`);
      }
    }
  }
  return fd;
}

/** Adopts an inherited listening socket (systemd socket activation). */
export function adoptListener(fd: number, handler: number, maxSize: number): Listener {
  return { server: serverOn(fd), handler, maxSize };
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

/**
 * Every connection accepted on any of the listeners, until unsubscribed
 * (which closes them).  Listeners may keep arriving: a script that kept a
 * reference to qmqp_listen can add one at runtime.
 */
export function accepted$(listeners: Observable<Listener>): Observable<Accepted> {
  return listeners.pipe(
    mergeMap(
      (listener) =>
        new Observable<Accepted>((subscriber) => {
          const onConnection = (socket: Socket): void => {
            // every stage listens for the errors it cares about; this one
            // only makes sure no error is ever unhandled (which would crash)
            socket.on('error', ignoreError);
            subscriber.next({ socket, listener });
          };
          listener.server.on('connection', onConnection);
          return () => {
            listener.server.off('connection', onConnection);
            listener.server.close();
          };
        }),
    ),
  );
}
