// Writes a list of buffers to a stream in batches of about 64 KiB, one
// gathered write per batch, and reports progress after each batch: the
// send timeouts of docs/limits.md count time without progress.  Large pieces
// are written as views into their buffer, never copied.
import type { Writable } from 'node:stream';
import { Observable } from 'rxjs';

const BATCH = 64 * 1024;

function batches(pieces: readonly Buffer[]): Buffer[][] {
  const result: Buffer[][] = [];
  let batch: Buffer[] = [];
  let size = 0;
  const flush = (): void => {
    if (batch.length > 0) result.push(batch);
    batch = [];
    size = 0;
  };
  for (const piece of pieces) {
    for (let offset = 0; offset < piece.length; ) {
      const take = Math.min(BATCH - size, piece.length - offset);
      batch.push(offset === 0 && take === piece.length ? piece : piece.subarray(offset, offset + take));
      size += take;
      offset += take;
      if (size >= BATCH) flush();
    }
  }
  flush();
  return result;
}

/** Emits the bytes written so far after each batch; completes when all is written. */
export function writePieces(stream: Writable, pieces: readonly Buffer[]): Observable<number> {
  return new Observable<number>((subscriber) => {
    const queue = batches(pieces);
    let written = 0;
    let index = 0;
    const next = (): void => {
      if (subscriber.closed) return;
      const batch = queue[index++];
      if (batch === undefined) {
        subscriber.complete();
        return;
      }
      stream.cork();
      for (let i = 0; i < batch.length; i++) {
        const piece = batch[i]!;
        const last = i === batch.length - 1;
        stream.write(piece, last ? (error) => done(error, piece.length) : undefined);
        if (!last) written += piece.length;
      }
      stream.uncork();
    };
    const done = (error: Error | null | undefined, lastLength: number): void => {
      if (error) {
        subscriber.error(error);
        return;
      }
      written += lastLength;
      subscriber.next(written);
      next();
    };
    next();
  });
}
