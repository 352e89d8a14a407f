// A socket's incoming bytes as an Observable: chunks until EOF; errors as errors.
import type { Socket } from 'node:net';
import { Observable, type Subscriber } from '../rx.js';

/**
 * Calls `onChunk` for each chunk `socket` receives, completes `subscriber`
 * on EOF or close (at once if the socket has already ended), errors it on
 * a socket error.  Returns the function that removes these listeners.
 */
export function readSocket<T>(socket: Socket, subscriber: Subscriber<T>, onChunk: (chunk: Buffer) => void): () => void {
  const onEnd = (): void => subscriber.complete();
  const onError = (error: Error): void => subscriber.error(error);
  socket.on('data', onChunk);
  socket.on('end', onEnd);
  socket.on('close', onEnd);
  socket.on('error', onError);
  if (socket.readableEnded || socket.destroyed) subscriber.complete();
  return () => {
    socket.off('data', onChunk);
    socket.off('end', onEnd);
    socket.off('close', onEnd);
    socket.off('error', onError);
  };
}

/** Emits each received chunk; completes on EOF or close; errors on a socket error. */
export function socketChunks(socket: Socket): Observable<Buffer> {
  return new Observable<Buffer>((subscriber) => readSocket(socket, subscriber, (chunk) => subscriber.next(chunk)));
}
