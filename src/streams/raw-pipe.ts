// A connected Unix stream socket driven through its libuv handle alone,
// without a net.Socket around it: for a connection the daemon opens,
// writes one gathered request to and reads one short answer from (a
// relay's downstream server, src/actions/connect.ts).
//
// A net.Socket costs its construction and its destroy (the Duplex and
// Readable/Writable state, the stream events, the destroy's ticks) on top
// of what the handle does; for a relayed mail that is a few µs of the
// daemon's CPU (perf, relay 2 KB: the downstream socket's construction and
// teardown together about 5 % of the user time).  Here the handle reads
// into one caller's buffer (as Node's `onread` option does), a write goes
// to it as one writev (src/streams/write-pieces.ts), and close() closes
// it.  Node's read protocol (stream_base_commons' onStreamRead) is
// followed: `onread` is called with the handle as `this` and the read's
// length or error in `streamBaseState[kReadBytesOrError]`.
//
// The Pipe class and the stream state come from `process.binding`
// ('pipe_wrap', 'stream_wrap'; deprecated in the documentation, DEP0111,
// present in Node 20 and 24).  Where either lacks what is needed,
// RawPipe.open() returns undefined and the caller makes a net.Socket.
import { openPipeHandle, type PipeHandle } from './pipe-handle.js';
import { handleError, streamWrapBinding, type HandleStream, type StreamHandle } from './write-pieces.js';

/** The handle's methods beyond those of pipe-handle.ts, and the reader we hang on it. */
interface ReadingHandle extends PipeHandle, StreamHandle {
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  onread: (this: ReadingHandle, arrayBuffer: ArrayBuffer | undefined) => void;
  readonly writeQueueSize: number;
  pipe: RawPipe;
}

const STATE = streamWrapBinding;

/** libuv's UV_EOF (the same on every platform). */
const UV_EOF = -4095;

/** Who hears what a RawPipe reads. */
export interface RawPipeReader {
  /** `length` bytes were read into the pipe's buffer (decode or copy them now: the next read overwrites them). */
  received(bytes: Buffer, length: number): void;
  /** The peer closed its side; nothing more is read. */
  ended(): void;
  /** A read failed; the pipe is closed already (as a Socket is destroyed). */
  failed(error: NodeJS.ErrnoException): void;
}

function onPipeRead(this: ReadingHandle): void {
  this.pipe.read(STATE!.streamBaseState[STATE!.kReadBytesOrError]!);
}

/** A connected Unix stream socket's handle, reading into one buffer; see the head of this file. */
export class RawPipe implements HandleStream {
  /** Closed by close() or by a failed read. */
  destroyed = false;
  /** The peer closed its side. */
  readableEnded = false;
  private reader: RawPipeReader | undefined = undefined;

  private constructor(
    readonly handle: ReadingHandle,
    private readonly buffer: Buffer,
  ) {
    handle.pipe = this;
    handle.onread = onPipeRead;
    handle.useUserBuffer(buffer);
  }

  /**
   * A RawPipe on the connected descriptor `fd`, reading into `buffer`
   * once start() is called; undefined where Node lacks the bindings (the
   * descriptor is then untouched).  Throws, as `new Socket({ fd })` does,
   * when the descriptor cannot be opened.
   */
  static open(fd: number, buffer: Buffer): RawPipe | undefined {
    if (STATE === undefined) return undefined;
    const handle = openPipeHandle(fd) as ReadingHandle | undefined;
    if (handle === undefined || typeof handle.useUserBuffer !== 'function' || typeof handle.readStart !== 'function' || typeof handle.writev !== 'function') {
      handle?.close();
      return undefined;
    }
    return new RawPipe(handle, buffer);
  }

  /** Starts reading: `reader` hears every read from now on, until close(). */
  start(reader: RawPipeReader): void {
    this.reader = reader;
    const status = this.handle.readStart();
    if (status !== 0) this.read(status);
  }

  /** Closes the descriptor (a write under way is cancelled; nothing is heard after this). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.reader = undefined;
    this.handle.close();
  }

  /** @internal a read's outcome (onPipeRead): a length, 0 (nothing), EOF or an error */
  read(status: number): void {
    const reader = this.reader;
    if (reader === undefined) return;
    if (status > 0) {
      reader.received(this.buffer, status);
    } else if (status === UV_EOF) {
      this.readableEnded = true;
      reader.ended();
    } else if (status < 0) {
      this.destroy();
      reader.failed(handleError(status, 'read'));
    }
  }
}
