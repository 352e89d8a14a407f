// Writes a list of buffers to a stream as one gathered write (cork, write
// each, uncork: Node hands them all to libuv in one writev, which goes on
// writing whatever the kernel does not take at once without returning to
// JavaScript; or, for a socket whose owner asks for it, that one writev
// made on the socket's handle directly, without the Writable's bookkeeping
// per piece).  The pieces are written as they are, never copied or
// concatenated.  The send timeouts of docs/limits.md count time without
// progress: progress is read from the bytes still queued, not from
// callbacks per batch.
//
// A write is an object whose methods do the work, not a set of closures
// made per write (see src/actions/connect.ts).  (The write's callback is a
// bound method: a bound function has no code of its own.)
import type { Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
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
function queuedBytes(stream: Writable | HandleStream): number {
  if (isHandleStream(stream)) return stream.handle.writeQueueSize;
  const handle = (stream as { _handle?: { writeQueueSize?: unknown } })._handle;
  const queued = typeof handle?.writeQueueSize === 'number' ? handle.writeQueueSize : 0;
  return queued + stream.writableLength;
}

/** A libuv stream handle's gathered write (Node's StreamBase `writev`), as Node's own write path calls it. */
export interface StreamHandle {
  writev(req: HandleWriteReq, chunks: readonly Buffer[], allBuffers: true): number;
  /** The bytes libuv still holds (shrinks with every partial write). */
  readonly writeQueueSize: number;
}

/**
 * A stream that is written only through its libuv handle, with no
 * Writable around it (src/streams/raw-pipe.ts): every write to it is
 * direct.  `destroyed`: its handle is closed.
 */
export interface HandleStream {
  readonly handle: StreamHandle;
  readonly destroyed: boolean;
}

function isHandleStream(stream: Writable | HandleStream): stream is HandleStream {
  return (stream as Partial<HandleStream>).handle !== undefined;
}

/** Node's WriteWrap: `oncomplete` is called with the request as `this` and libuv's status. */
interface HandleWriteReq {
  handle: StreamHandle;
  oncomplete: (this: HandleWriteReq, status: number) => void;
  async: boolean;
  /** The write it belongs to; its pieces, kept alive while libuv writes them (as Node keeps `req._chunks`). */
  write: GatheredWrite;
  pieces: readonly Buffer[];
}

/** What the direct writes (and src/streams/client-pipe.ts) use of Node's stream_wrap binding. */
export interface StreamWrapBinding {
  WriteWrap: new () => HandleWriteReq;
  ShutdownWrap: new () => object;
  streamBaseState: Int32Array;
  kLastWriteWasAsync: number;
  kReadBytesOrError: number;
}

/**
 * Node's stream_wrap binding (`process.binding`, deprecated in the
 * documentation, DEP0111, as for pipe_wrap in src/streams/pipe-handle.ts),
 * or undefined where it lacks what a direct write needs.
 */
function streamWrap(): StreamWrapBinding | undefined {
  try {
    const b = (process as unknown as { binding(name: string): Partial<StreamWrapBinding> }).binding('stream_wrap');
    return typeof b.WriteWrap === 'function' &&
      typeof b.ShutdownWrap === 'function' &&
      b.streamBaseState instanceof Int32Array &&
      typeof b.kLastWriteWasAsync === 'number' &&
      typeof b.kReadBytesOrError === 'number'
      ? (b as StreamWrapBinding)
      : undefined;
  } catch {
    return undefined;
  }
}

const STREAM_WRAP = streamWrap();

/** The stream_wrap binding where it has what direct writes need, else undefined. */
export const streamWrapBinding: StreamWrapBinding | undefined = STREAM_WRAP;

/** Whether writes can go straight to a libuv handle here (a HandleStream needs it). */
export const directWrites: boolean = STREAM_WRAP !== undefined;

/** The handle of `stream` when a write can go straight to it: a stream handle, nothing queued, corked, ended or destroyed. */
function directHandle(stream: Writable | HandleStream): StreamHandle | undefined {
  if (isHandleStream(stream)) return stream.destroyed ? undefined : stream.handle;
  if (STREAM_WRAP === undefined || stream.writableLength !== 0 || stream.writableCorked !== 0 || stream.writableEnded || stream.destroyed) return undefined;
  const handle = (stream as { _handle?: Partial<StreamHandle> | null })._handle;
  return typeof handle?.writev === 'function' ? (handle as StreamHandle) : undefined;
}

/** A failed libuv call's status as the error Node's stream paths give (`errno`, `code`, `syscall`; message `write EPIPE`). */
export function handleError(status: number, syscall: 'read' | 'write'): NodeJS.ErrnoException {
  const code = getSystemErrorName(status);
  return Object.assign(new Error(`${syscall} ${code}`), { errno: status, code, syscall });
}

function onHandleWriteComplete(this: HandleWriteReq, status: number): void {
  this.write.handleWriteDone(status);
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
    private readonly stream: Writable | HandleStream,
    private readonly stallMs: number | undefined,
    private readonly listener: WriteListener,
  ) {}

  /** Writes `pieces` (see writeGathered); `direct`: to the stream's handle where it can. */
  start(pieces: readonly Buffer[], direct: boolean): void {
    const { stream, stallMs } = this;
    const last = pieces.length - 1;
    const handle = (direct || isHandleStream(stream)) && last >= 0 ? directHandle(stream) : undefined;
    let pending: boolean;
    if (handle !== undefined) {
      pending = this.writeToHandle(handle, pieces);
    } else if (last < 0 || isHandleStream(stream)) {
      // nothing to write, or a closed handle (reported as written, as a write cancelled by its close is)
      queueMicrotask(finishEmpty.bind(undefined, this));
      pending = false;
    } else {
      stream.cork();
      for (let i = 0; i < last; i++) stream.write(pieces[i]!);
      stream.write(pieces[last]!, this.afterWrite.bind(this));
      stream.uncork();
      pending = stream.writableLength > 0;
    }
    if (stallMs !== undefined && !this.finished && pending) {
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

  /** @internal libuv finished the direct write (status < 0: failed, or cancelled by the handle's close). */
  handleWriteDone(status: number): void {
    // a stream destroyed meanwhile reports success, as Node's write path does
    this.finish(status < 0 && !this.stream.destroyed ? handleError(status, 'write') : undefined);
  }

  private afterWrite(error: Error | null | undefined): void {
    this.finish(error ?? undefined);
  }

  /**
   * One writev on the handle, as Node's Socket makes it under cork/uncork,
   * without the Writable's per-piece bookkeeping (a request object per
   * piece, the buffered list, the array of chunks built from it).
   * libuv writes what the kernel takes at once and goes on with the rest
   * by itself.  Tells the listener a microtask later when all was written
   * at once (Node: a tick later), or the error; returns whether libuv
   * still holds bytes.  Measured (bench, same run, 5 rounds, relay 8
   * clients): CPU per 1 MiB mail 0.77x (per round 0.77-0.92), 2 KB 1.04x
   * (0.92-1.25, within the noise of that run).
   */
  private writeToHandle(handle: StreamHandle, pieces: readonly Buffer[]): boolean {
    const { WriteWrap, streamBaseState, kLastWriteWasAsync } = STREAM_WRAP!;
    const req = new WriteWrap();
    req.handle = handle;
    req.oncomplete = onHandleWriteComplete;
    req.async = false;
    req.write = this;
    req.pieces = pieces;
    const status = handle.writev(req, pieces, true);
    if (status !== 0) {
      queueMicrotask(this.finish.bind(this, handleError(status, 'write')));
      return false;
    }
    if (streamBaseState[kLastWriteWasAsync] !== 0) {
      req.async = true;
      return true;
    }
    queueMicrotask(finishEmpty.bind(undefined, this));
    return false;
  }
}

/**
 * Writes `pieces` to `stream` in one gathered write and tells `listener`
 * once: `written()` without an argument when everything is written, with
 * the error when the write fails, with 'stalled' when `stallMs` pass in
 * which not one queued byte left (checked every `stallMs / 8`; a write the
 * kernel takes at once arms no timer).  Without `stallMs` there is no
 * limit.  Returns the write; its unsubscribe() stops watching.
 *
 * `direct` (for a socket the caller owns and only writes this way): the
 * pieces go straight to the socket's libuv handle in one writev when
 * nothing else is queued on it, bypassing the Writable (which then
 * knows nothing of the write: its own 'drain', 'finish' and error
 * events are not involved; a failed write does not destroy the socket).
 * A HandleStream is always written directly.
 */
export function writeGathered(stream: Writable | HandleStream, pieces: readonly Buffer[], stallMs: number | undefined, listener: WriteListener, direct = false): GatheredWrite {
  const write = new GatheredWrite(stream, stallMs, listener);
  write.start(pieces, direct);
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
