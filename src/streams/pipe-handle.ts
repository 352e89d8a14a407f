// The libuv handle for an accepted Unix stream descriptor, made directly.
//
// `new net.Socket({ fd })` first asks libuv what kind of descriptor it was
// given (uv_guess_handle: isatty, fstat, getsockname, getsockopt SO_TYPE:
// four system calls), which for the daemon's accepted connections is known
// already: they are Unix stream sockets, and Node's own servers hand their
// sockets a Pipe handle made this way.  In the 2 KB benchmarks the guess was
// the largest single cost of accepting (about a tenth of the daemon's CPU).
// Node exposes the Pipe class only through `process.binding('pipe_wrap')`
// (deprecated in the documentation, DEP0111, and present in Node 20 and 24);
// without it, the Socket takes the descriptor as before.
//
// The options object has one shape, with every option Node's Socket
// constructor sets on its own copy of the options already present (with
// the value it sets): the constructor copies them with object spread, and
// on Node 20 adding a property to such a copy makes a new hidden class
// each time.  Measured: a Socket made and destroyed costs about 12 µs of
// CPU with the options it usually gets, 2.5 µs with these (and the
// objects of later sockets then keep one map instead of ever new ones).
import type { OnReadOpts, SocketConstructorOpts } from 'node:net';

/** Node's internal pipe_wrap handle, as far as a Socket needs it. */
export interface PipeHandle {
  open(fd: number): number;
  close(): void;
}

type PipeConstructor = new (type: number) => PipeHandle;

/** pipe_wrap's `constants.SOCKET`: a connected stream (not a server, not IPC). */
const PIPE_SOCKET = 0;

function pipeConstructor(): PipeConstructor | undefined {
  try {
    const binding = (process as unknown as { binding(name: string): { Pipe?: unknown; constants?: { SOCKET?: unknown } } }).binding('pipe_wrap');
    return typeof binding.Pipe === 'function' && binding.constants?.SOCKET === PIPE_SOCKET ? (binding.Pipe as PipeConstructor) : undefined;
  } catch {
    return undefined;
  }
}

const Pipe = pipeConstructor();

/** The options of `new net.Socket` that unixStreamOptions gives (Node's types list neither `handle` nor the Duplex options). */
export interface UnixStreamOptions extends SocketConstructorOpts {
  readonly handle: PipeHandle | undefined;
  readonly onread: OnReadOpts | undefined;
  readonly emitClose: false;
  readonly autoDestroy: true;
  readonly decodeStrings: false;
}

/** The Pipe handle opened on `fd`, or undefined where Node does not offer one (src/streams/raw-pipe.ts uses it alone). */
export function openPipeHandle(fd: number): PipeHandle | undefined {
  if (Pipe === undefined) return undefined;
  const handle = new Pipe(PIPE_SOCKET);
  const errno = handle.open(fd);
  if (errno !== 0) {
    handle.close();
    throw Object.assign(new Error(`open(${fd}) failed: errno ${-errno}`), { errno });
  }
  return handle;
}

/**
 * Options for `new Socket` on the connected Unix stream descriptor `fd`
 * (readable, writable, half-open allowed, reads into `onread` when given):
 * `handle` a Pipe opened on it where Node allows it, else `fd`.  Always
 * the same shape (see the head of this file).  Throws, like `new Socket({
 * fd })`, when the descriptor cannot be opened.
 */
export function unixStreamOptions(fd: number, onread?: OnReadOpts): UnixStreamOptions {
  const handle = openPipeHandle(fd);
  return {
    handle,
    fd: handle === undefined ? fd : undefined,
    readable: true,
    writable: true,
    allowHalfOpen: true,
    onread,
    emitClose: false,
    autoDestroy: true,
    decodeStrings: false,
  };
}

/** For tests: whether sockets get their handle directly (not through the guess). */
export const directPipeHandles: boolean = Pipe !== undefined;
