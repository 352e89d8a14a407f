// Writes a list of buffers to a stream as one gathered write (cork, write
// each, uncork: Node hands them all to libuv in one writev, which goes on
// writing whatever the kernel does not take at once without returning to
// JavaScript).  The pieces are written as they are, never copied or
// concatenated.  The send timeouts of docs/limits.md count time without
// progress: progress is read from the bytes still queued, not from
// callbacks per batch.
import type { Writable } from 'node:stream';
import { Observable } from '../rx.js';

/** How a gathered write ended: written (undefined), failed (the error), or no progress for the stall limit. */
export type WriteOutcome = undefined | Error | 'stalled';

/** Checks of the queued bytes per stall limit: a stall is noticed at most 1/STALL_CHECKS of the limit late. */
const STALL_CHECKS = 8;

/**
 * The bytes `stream` has not handed to the kernel yet: libuv's write queue
 * of a socket or pipe (`_handle.writeQueueSize`, which shrinks with every
 * partial write) plus what the Writable still holds (which only shrinks
 * when a write completes).
 */
function queuedBytes(stream: Writable): number {
  const handle = (stream as { _handle?: { writeQueueSize?: unknown } })._handle;
  const queued = typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
  return queued + stream.writableLength;
}

/**
 * Writes `pieces` to `stream` in one gathered write and calls `done` once:
 * without an argument when everything is written, with the error when the
 * write fails, with 'stalled' when `stallMs` pass in which not one queued
 * byte left (checked every `stallMs / 8`; a write the kernel takes at once
 * arms no timer).  Without `stallMs` there is no limit.  Returns the
 * function that stops watching: `done` is not called after it (the write
 * itself goes on unless the stream is destroyed).
 */
export function writeGathered(stream: Writable, pieces: readonly Buffer[], stallMs: number | undefined, done: (outcome: WriteOutcome) => void): () => void {
  let finished = false;
  let timer: NodeJS.Timeout | undefined;
  const finish = (outcome: WriteOutcome): void => {
    if (finished) return;
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
    done(outcome);
  };
  const last = pieces.length - 1;
  if (last < 0) {
    queueMicrotask(() => finish(undefined));
  } else {
    stream.cork();
    for (let i = 0; i < last; i++) stream.write(pieces[i]!);
    stream.write(pieces[last]!, (error) => finish(error ?? undefined));
    stream.uncork();
  }
  if (stallMs !== undefined && !finished && stream.writableLength > 0) {
    let queued = queuedBytes(stream);
    let quietSince = Date.now();
    timer = setInterval(
      () => {
        const now = queuedBytes(stream);
        if (now < queued) {
          queued = now;
          quietSince = Date.now();
        } else if (Date.now() - quietSince >= stallMs) {
          finish('stalled');
        }
      },
      Math.max(1, Math.floor(stallMs / STALL_CHECKS)),
    );
  }
  return () => {
    finished = true;
    if (timer !== undefined) clearTimeout(timer);
  };
}

/** Writes `pieces` as one gathered write; emits nothing, completes once all is written, errors with the write's error. */
export function writePieces(stream: Writable, pieces: readonly Buffer[]): Observable<never> {
  return new Observable<never>((subscriber) =>
    writeGathered(stream, pieces, undefined, (outcome) => (outcome === undefined ? subscriber.complete() : subscriber.error(outcome))),
  );
}
