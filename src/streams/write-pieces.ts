// Writes a list of buffers to a stream as one gathered write (cork, write
// each, uncork: Node hands them all to libuv in one writev, which goes on
// writing whatever the kernel does not take at once without returning to
// JavaScript).  The pieces are written as they are, never copied or
// concatenated.  The send timeouts of docs/limits.md count time without
// progress: progress is read from the bytes still queued, not from
// callbacks per batch.
//
// A write is an object whose methods do the work, not a set of closures
// made per write (see src/actions/connect.ts).  (The write's callback is a
// bound method: a bound function has no code of its own.)
import type { Writable } from 'node:stream';
import { Observable, type Subscriber } from '../rx.js';

/** How a gathered write ended: written (undefined), failed (the error), or no progress for the stall limit. */
export type WriteOutcome = undefined | Error | 'stalled';

/** Who hears how a gathered write ended (an object with a method, not a callback: see the head of this file). */
export interface WriteListener {
  written(outcome: WriteOutcome): void;
}

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

function checkStall(write: GatheredWrite): void {
  write.checkStall();
}

function finishEmpty(write: GatheredWrite): void {
  write.finish(undefined);
}

/** One gathered write under way; writeGathered() starts it. */
export class GatheredWrite {
  private finished = false;
  private timer: NodeJS.Timeout | undefined = undefined;
  private queued = 0;
  private quietSince = 0;

  constructor(
    private readonly stream: Writable,
    private readonly stallMs: number | undefined,
    private readonly listener: WriteListener,
  ) {}

  /** Writes `pieces` (see writeGathered). */
  start(pieces: readonly Buffer[]): void {
    const { stream, stallMs } = this;
    const last = pieces.length - 1;
    if (last < 0) {
      queueMicrotask(finishEmpty.bind(undefined, this));
    } else {
      stream.cork();
      for (let i = 0; i < last; i++) stream.write(pieces[i]!);
      stream.write(pieces[last]!, this.afterWrite.bind(this));
      stream.uncork();
    }
    if (stallMs !== undefined && !this.finished && stream.writableLength > 0) {
      this.queued = queuedBytes(stream);
      this.quietSince = Date.now();
      this.timer = setInterval(checkStall, Math.max(1, Math.floor(stallMs / STALL_CHECKS)), this);
    }
  }

  /** Stops watching: the listener hears nothing after this (the write itself goes on unless the stream is destroyed). */
  unsubscribe(): void {
    this.finished = true;
    if (this.timer !== undefined) clearInterval(this.timer);
  }

  /** @internal */
  finish(outcome: WriteOutcome): void {
    if (this.finished) return;
    this.unsubscribe();
    this.listener.written(outcome);
  }

  /** @internal every stallMs / 8 while bytes are queued */
  checkStall(): void {
    const now = queuedBytes(this.stream);
    if (now < this.queued) {
      this.queued = now;
      this.quietSince = Date.now();
    } else if (Date.now() - this.quietSince >= this.stallMs!) {
      this.finish('stalled');
    }
  }

  private afterWrite(error: Error | null | undefined): void {
    this.finish(error ?? undefined);
  }
}

/**
 * Writes `pieces` to `stream` in one gathered write and tells `listener`
 * once: `written()` without an argument when everything is written, with
 * the error when the write fails, with 'stalled' when `stallMs` pass in
 * which not one queued byte left (checked every `stallMs / 8`; a write the
 * kernel takes at once arms no timer).  Without `stallMs` there is no
 * limit.  Returns the write; its unsubscribe() stops watching.
 */
export function writeGathered(stream: Writable, pieces: readonly Buffer[], stallMs: number | undefined, listener: WriteListener): GatheredWrite {
  const write = new GatheredWrite(stream, stallMs, listener);
  write.start(pieces);
  return write;
}

/** Completes a subscriber when a write is done; errors it with `fail(outcome)` when not. */
class WriteSubscriber implements WriteListener {
  constructor(
    private readonly subscriber: Subscriber<never>,
    private readonly fail: (outcome: Exclude<WriteOutcome, undefined>) => unknown,
  ) {}

  written(outcome: WriteOutcome): void {
    if (outcome === undefined) this.subscriber.complete();
    else this.subscriber.error(this.fail(outcome));
  }
}

/**
 * A gathered write as an Observable: each subscription writes `pieces` to
 * `stream`; emits nothing, completes once all is written, errors with
 * `fail(outcome)` when the write fails or stalls (see writeGathered).
 * Unsubscribing stops watching the write (the caller closes the stream).
 */
export function gatheredWrite$(
  stream: Writable,
  pieces: readonly Buffer[],
  stallMs: number | undefined,
  fail: (outcome: Exclude<WriteOutcome, undefined>) => unknown,
): Observable<never> {
  // a bound module function, not a literal per write
  return new Observable<never>(subscribeWrite.bind(undefined, stream, pieces, stallMs, fail));
}

/** One subscription to gatheredWrite$: the write is its teardown. */
function subscribeWrite(
  stream: Writable,
  pieces: readonly Buffer[],
  stallMs: number | undefined,
  fail: (outcome: Exclude<WriteOutcome, undefined>) => unknown,
  subscriber: Subscriber<never>,
): GatheredWrite {
  return writeGathered(stream, pieces, stallMs, new WriteSubscriber(subscriber, fail));
}

function itself(error: Error | 'stalled'): unknown {
  return error;
}

/** Writes `pieces` as one gathered write; emits nothing, completes once all is written, errors with the write's error. */
export function writePieces(stream: Writable, pieces: readonly Buffer[]): Observable<never> {
  return gatheredWrite$(stream, pieces, undefined, itself);
}
