// An accepted client connection as a net.Socket whose reads go into the
// shared receive slabs (src/streams/receive-pool.ts) instead of a fresh
// buffer per read.  Node's `onread` option reads straight into the window
// the connection's ReceiveArea offers; each read is then emitted as an
// ordinary 'data' event carrying a view of the bytes read, so every
// consumer of the socket (the request reader, the cancellation watch, a
// refused client's drain) sees the usual events.  The windows go back to
// the pool when the socket has closed: by then nothing reads into them and
// every write from them (a relay, a child's stdin) has finished or been
// abandoned with its own socket.
import { Socket, type OnReadOpts } from 'node:net';
import { unixStreamOptions } from './pipe-handle.js';
import { ReceiveArea } from './receive-pool.js';

/** A Socket for an accepted descriptor, reading into the receive pool. */
export function acceptedSocket(fd: number): Socket {
  const area = new ReceiveArea();
  const onread: OnReadOpts = {
    buffer: () => area.next(),
    callback: (n) => {
      socket.emit('data', area.filled(n));
      return true;
    },
  };
  // Node's Socket constructor takes `onread` (its types list it for connect() only)
  const socket: Socket = new Socket(unixStreamOptions(fd, onread));
  socket.once('close', () => area.release());
  areas.set(socket, area);
  return socket;
}

const areas = new WeakMap<Socket, ReceiveArea>();

/** Where `socket` reads into, if it was made by acceptedSocket. */
export function receiveArea(socket: Socket): ReceiveArea | undefined {
  return areas.get(socket);
}

/**
 * The request of `socket` is complete: what it sends from now on is read
 * into the window it already has (only to notice it), not kept.  Nothing
 * for a socket that was not made by acceptedSocket.
 */
export function stopKeeping(socket: Socket): void {
  areas.get(socket)?.stopGrowing();
}
