// Listening sockets (daemon.md §4, §5) and the stream of accepted connections.
import { chmodSync, lstatSync, unlinkSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { Observable, mergeMap } from 'rxjs';
import { closeFd, connectSocket, listenUnix, SystemError } from '../native/linux.js';
import { logPlain } from '../log.js';
import type { ListenTarget } from '../lua/engine.js';

const BACKLOG = 64;

export interface Listener {
  readonly server: Server;
  /** How logs and metrics name it: the path, `@name`, or `systemd`. */
  readonly name: string;
  /** The socket file this process created, removed at a clean exit if it is still the same file. */
  readonly ownFile: { readonly path: string; readonly ino: number } | undefined;
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

/** How a listen target is named in logs, metrics and `qrelay check`. */
export function listenTargetName(target: ListenTarget): string {
  if (target.kind === 'abstract') return '@' + target.name.toString('latin1');
  return target.kind === 'path' ? target.path : 'systemd';
}

/**
 * Creates a listening socket on a path or abstract name, synchronously.
 * A path (relative ones from the current directory, i.e. the config's
 * folder during startup) gets a stale file removed first — but never a
 * socket a live process still accepts on — and mode 0666.
 */
export function bindListener(target: Exclude<ListenTarget, { kind: 'systemd' }>, handler: number, maxSize: number): Listener {
  const name = listenTargetName(target);
  if (target.kind === 'abstract') {
    return { server: serverOn(listenUnix(target.name, true, BACKLOG, name)), name, ownFile: undefined, handler, maxSize };
  }
  const path = resolve(target.path);
  removeStale(path, target.path);
  const fd = listenUnix(Buffer.from(target.path, 'latin1'), false, BACKLOG, target.path);
  try {
    chmodSync(path, 0o666);
  } catch (e) {
    closeFd(fd);
    throw new Error(`Failed to chmod "${target.path}": ${(e as Error).message}`);
  }
  return { server: serverOn(fd), name, ownFile: { path, ino: lstatSync(path).ino }, handler, maxSize };
}

/** Adopts an inherited listening socket (systemd socket activation). */
export function adoptListener(fd: number, handler: number, maxSize: number): Listener {
  return { server: serverOn(fd), name: 'systemd', ownFile: undefined, handler, maxSize };
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
