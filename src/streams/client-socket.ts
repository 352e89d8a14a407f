// An accepted client connection: a ClientPipe (src/streams/client-pipe.ts,
// the bare libuv handle) where Node has the bindings, else a net.Socket
// given the same interface.  The Socket reads through Node's `onread`
// option into the windows the connection's ReceiveArea offers, and its
// events go to the one reader set; its windows go back to the pool when
// it has closed.
import { Socket, type OnReadOpts } from 'node:net';
import { ClientPipe, type ClientConnection, type ClientReader, type ClientWrite, type ClientWriteListener } from './client-pipe.js';
import { unixStreamOptions } from './pipe-handle.js';
import { ReceiveArea } from './receive-pool.js';

/** For tests: whether accepted connections are ClientPipes where Node has the bindings (else always Sockets). */
export const clientPipes = { raw: true };

/** The accepted descriptor `fd` as a client connection, reading at once. */
export function acceptedClient(fd: number): ClientConnection {
  return (clientPipes.raw ? ClientPipe.open(fd) : undefined) ?? new SocketClient(fd);
}

/** A net.Socket as a ClientConnection (where Node lacks what ClientPipe needs). */
class SocketClient implements ClientConnection, OnReadOpts {
  reader: ClientReader | undefined = undefined;
  readonly area = new ReceiveArea();
  private readonly socket: Socket;

  constructor(fd: number) {
    // Node's Socket constructor takes `onread` (its types list it for connect() only)
    this.socket = new Socket(unixStreamOptions(fd, this));
    this.socket.on('end', () => this.reader?.end());
    this.socket.on('close', () => {
      this.area.release();
      this.reader?.end();
    });
    // a failed read destroys the Socket (it is then closed, as a ClientPipe is)
    this.socket.on('error', (error: NodeJS.ErrnoException) => this.reader?.failed(error));
  }

  /** OnReadOpts: where the next read goes. */
  readonly buffer = (): Buffer => this.area.next();

  /** OnReadOpts: `n` bytes were read. */
  readonly callback = (n: number): boolean => {
    this.reader?.data(this.area.filled(n));
    return true;
  };

  get fd(): number | undefined {
    const handle = (this.socket as unknown as { _handle?: { fd?: number } | null })._handle;
    return handle?.fd !== undefined && handle.fd >= 0 ? handle.fd : undefined;
  }

  get destroyed(): boolean {
    return this.socket.destroyed;
  }

  get readableEnded(): boolean {
    return this.socket.readableEnded;
  }

  get writable(): boolean {
    return this.socket.writable;
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  write(text: string): ClientWrite {
    const socket = this.socket;
    socket.write(text, 'latin1');
    // written (or failed) within the call
    if (socket.writableLength === 0) return (socket.errored as NodeJS.ErrnoException | null) ?? 'written';
    return 'pending';
  }

  afterWrite(listener: ClientWriteListener): void {
    const socket = this.socket;
    const onError = (error: NodeJS.ErrnoException): void => listener.written(error);
    socket.once('error', onError);
    socket.end(() => {
      socket.off('error', onError);
      listener.written(undefined);
    });
  }

  end(text: string): void {
    this.socket.end(text, 'latin1');
  }

  destroy(): void {
    this.socket.destroy();
  }
}
