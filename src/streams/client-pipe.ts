// An accepted client connection driven through its libuv Pipe handle
// alone, without a net.Socket around it (as src/streams/raw-pipe.ts does
// for the downstream connection of a relay).  Reads go straight into the
// windows of the connection's ReceiveArea (src/streams/receive-pool.ts):
// the handle reads into the window it was given (`useUserBuffer`), and
// the read callback returns the next window, as Node's `onread` option
// does (lib/internal/stream_base_commons.js, onStreamRead).  The answer is
// one small latin1 string written with one call on the handle; a refused
// client's answer is followed by a shutdown of the write side.  The
// windows go back to the pool when the handle has closed: by then nothing
// reads into them, and every write from them (a relay, a child's stdin)
// has finished or been abandoned with its own stream.
//
// Instead of events, one reader at a time hears what is read: the request
// reader while the request comes in (src/operators/receive-request.ts),
// the watch for a client that goes while its mail is processed
// (src/operators/client-gone.ts), or a refused client's drain
// (src/operators/connection-limits.ts).  Each sets `reader` when it starts
// and clears it (if it is still the one set) when it stops.
//
// A net.Socket costs its construction, its destroy (the Duplex state, the
// destroy's ticks and its 'close' event), the Writable's path for the
// answer and the listeners each stage adds and removes; perf put that at
// about 12 % of the daemon's user CPU per relayed 2 KB mail.  Where Node
// lacks the bindings, src/streams/client-socket.ts gives a net.Socket the
// same interface.
import { openPipeHandle, type PipeHandle } from './pipe-handle.js';
import type { Pausable } from './receive-budget.js';
import { ReceiveArea } from './receive-pool.js';
import { handleError, streamWrapBinding } from './write-pieces.js';

/** Who hears what an accepted client connection reads (one at a time: `ClientConnection.reader`). */
export interface ClientReader {
  /** Bytes were read: a view of the receive area's window (kept, not copied). */
  data(chunk: Buffer): void;
  /** The client closed or half-closed its side: nothing more is read. */
  end(): void;
  /** A read (or a refused client's answer) failed; the connection is closed already. */
  failed(error: NodeJS.ErrnoException): void;
}

/** Who hears how a pending write ended: undefined when it was all written, else the error. */
export interface ClientWriteListener {
  written(error: NodeJS.ErrnoException | undefined): void;
}

/** A write's outcome at once: all written, still under way (see `afterWrite`), or failed. */
export type ClientWrite = 'written' | 'pending' | NodeJS.ErrnoException;

/** An accepted client connection as the client-side stages use it. */
export interface ClientConnection extends Pausable {
  /** Hears every read from now on; set and cleared by the stage that reads. */
  reader: ClientReader | undefined;
  /** Where it reads into. */
  readonly area: ReceiveArea;
  /** Its descriptor while open (SO_PEERCRED, SO_PEERPIDFD), else undefined. */
  readonly fd: number | undefined;
  /** Closed (by destroy() or a failed read). */
  readonly destroyed: boolean;
  /** The client has closed or half-closed its side. */
  readonly readableEnded: boolean;
  /** Open and its write side not shut down. */
  readonly writable: boolean;
  /**
   * Writes `text` (latin1, one byte a character): 'written' when the kernel
   * took all of it within the call (the usual case for an answer), the
   * error when the write failed at once, or 'pending'; then call
   * afterWrite() within the same turn of the event loop.
   */
  write(text: string): ClientWrite;
  /** `listener` hears how the pending write ended (a connection destroyed meanwhile counts as written). */
  afterWrite(listener: ClientWriteListener): void;
  /** Writes `text`, then shuts the write side down; a failed write closes the connection and tells the reader. */
  end(text: string): void;
  /** Closes the connection (idempotent); the reader hears nothing of it. */
  destroy(): void;
}

/** The handle's methods beyond those of pipe-handle.ts, and the connection we hang on it. */
interface ClientHandle extends PipeHandle {
  readStart(): number;
  readStop(): number;
  useUserBuffer(buffer: Uint8Array): void;
  writeLatin1String(req: AnswerReq, text: string): number;
  shutdown(req: ShutdownReq): number;
  close(callback?: (this: ClientHandle) => void): void;
  onread: (this: ClientHandle) => Buffer | undefined;
  client: ClientPipe;
}

/** Node's WriteWrap: `oncomplete` is called with the request as `this` and libuv's status. */
interface AnswerReq {
  handle: ClientHandle;
  oncomplete: (this: AnswerReq, status: number) => void;
  async: boolean;
}

/** Node's ShutdownWrap. */
interface ShutdownReq {
  handle: ClientHandle;
  oncomplete: (this: ShutdownReq, status: number) => void;
}

/** libuv's UV_EOF (the same on every platform). */
const UV_EOF = -4095;

const STATE = streamWrapBinding;

function onClientRead(this: ClientHandle): Buffer | undefined {
  return this.client.read(STATE!.streamBaseState[STATE!.kReadBytesOrError]!);
}

function onClientClosed(this: ClientHandle): void {
  this.client.area.release();
}

function onAnswerWritten(this: AnswerReq, status: number): void {
  this.handle.client.written(status);
}

/** A shutdown's outcome is not waited for (Node's Socket ignores it too): the close that follows ends the connection. */
function onShutdown(): void {}

/** An accepted client connection's handle; see the head of this file. */
export class ClientPipe implements ClientConnection {
  reader: ClientReader | undefined = undefined;
  readonly area = new ReceiveArea();
  destroyed = false;
  readableEnded = false;
  private reading = true;
  private shut = false;
  private listener: ClientWriteListener | undefined = undefined;

  private constructor(
    private readonly handle: ClientHandle,
    private readonly descriptor: number,
  ) {
    handle.client = this;
    handle.onread = onClientRead;
    handle.useUserBuffer(this.area.next());
  }

  /**
   * A ClientPipe on the accepted descriptor `fd`, reading at once (as a
   * net.Socket made on it does; one whose reading cannot start is
   * returned closed, as such a Socket is destroyed); undefined where Node
   * lacks the bindings (the descriptor is then untouched).  Throws, as
   * `new Socket({ fd })` does, when the descriptor cannot be opened.
   */
  static open(fd: number): ClientPipe | undefined {
    if (STATE === undefined) return undefined;
    const handle = openPipeHandle(fd) as ClientHandle | undefined;
    if (handle === undefined || typeof handle.useUserBuffer !== 'function' || typeof handle.readStart !== 'function' || typeof handle.writeLatin1String !== 'function' || typeof handle.shutdown !== 'function') {
      handle?.close();
      return undefined;
    }
    const pipe = new ClientPipe(handle, fd);
    if (handle.readStart() !== 0) pipe.destroy();
    return pipe;
  }

  get fd(): number | undefined {
    return this.destroyed ? undefined : this.descriptor;
  }

  get writable(): boolean {
    return !this.destroyed && !this.shut;
  }

  /** Stops reading (the receive budget holds the connection back). */
  pause(): void {
    if (!this.reading) return;
    this.reading = false;
    if (!this.destroyed) this.handle.readStop();
  }

  /** Reads again after pause(). */
  resume(): void {
    if (this.reading || this.destroyed || this.readableEnded) return;
    this.reading = true;
    const status = this.handle.readStart();
    if (status !== 0) this.fail(handleError(status, 'read'));
  }

  write(text: string): ClientWrite {
    const { WriteWrap, streamBaseState, kLastWriteWasAsync } = STATE!;
    const req = new WriteWrap() as unknown as AnswerReq;
    req.handle = this.handle;
    req.oncomplete = onAnswerWritten;
    req.async = false;
    this.listener = undefined;
    const status = this.handle.writeLatin1String(req, text);
    if (status !== 0) return handleError(status, 'write');
    if (streamBaseState[kLastWriteWasAsync] === 0) return 'written';
    req.async = true;
    return 'pending';
  }

  afterWrite(listener: ClientWriteListener): void {
    this.listener = listener;
  }

  end(text: string): void {
    if (this.destroyed) return;
    const outcome = this.write(text);
    if (typeof outcome !== 'string') {
      this.fail(outcome);
      return;
    }
    this.shut = true;
    const req = new STATE!.ShutdownWrap() as ShutdownReq;
    req.handle = this.handle;
    req.oncomplete = onShutdown;
    // libuv shuts the write side down once the write is done
    this.handle.shutdown(req);
  }

  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.reading = false;
    this.handle.close(onClientClosed);
  }

  /** @internal a read's outcome (onClientRead): a length, 0 (nothing), EOF or an error; returns the next window */
  read(status: number): Buffer | undefined {
    if (status > 0) {
      const chunk = this.area.filled(status);
      this.reader?.data(chunk);
      return this.destroyed ? undefined : this.area.next();
    }
    if (status === UV_EOF) {
      // libuv stops reading at the end by itself
      this.readableEnded = true;
      this.reading = false;
      this.reader?.end();
    } else if (status < 0) {
      this.fail(handleError(status, 'read'));
    }
    return undefined;
  }

  /** @internal the pending write ended (status < 0: failed, or cancelled by the close) */
  written(status: number): void {
    const error = status < 0 && !this.destroyed ? handleError(status, 'write') : undefined;
    const listener = this.listener;
    this.listener = undefined;
    if (listener !== undefined) listener.written(error);
    else if (error !== undefined) this.fail(error);
  }

  /** Closes the connection and tells the reader why. */
  private fail(error: NodeJS.ErrnoException): void {
    if (this.destroyed) return;
    this.destroy();
    this.reader?.failed(error);
  }
}
