// A socket's incoming bytes as an Observable: chunks until EOF; errors as errors.
import type { Socket } from 'node:net';
import { Observable } from 'rxjs';

/** Emits each received chunk; completes on EOF or close; errors on a socket error. */
export function socketChunks(socket: Socket): Observable<Buffer> {
  return new Observable<Buffer>((subscriber) => {
    const onData = (chunk: Buffer): void => subscriber.next(chunk);
    const onEnd = (): void => subscriber.complete();
    const onError = (error: Error): void => subscriber.error(error);
    socket.on('data', onData);
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onError);
    if (socket.readableEnded || socket.destroyed) subscriber.complete();
    return () => {
      socket.off('data', onData);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
      socket.off('error', onError);
    };
  });
}
