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
import type { SocketConstructorOpts } from 'node:net';

/** Node's internal pipe_wrap handle, as far as a Socket needs it. */
interface PipeHandle {
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

/**
 * Socket constructor options for the accepted Unix stream descriptor `fd`:
 * `{ handle }` (a Pipe opened on it) where Node allows it, else `{ fd }`.
 * Throws, like `new Socket({ fd })`, when the descriptor cannot be opened.
 */
export function unixStreamOptions(fd: number): Pick<SocketConstructorOpts, 'fd'> & { handle?: PipeHandle } {
  if (Pipe === undefined) return { fd };
  const handle = new Pipe(PIPE_SOCKET);
  const errno = handle.open(fd);
  if (errno !== 0) {
    handle.close();
    throw Object.assign(new Error(`open(${fd}) failed: errno ${-errno}`), { errno });
  }
  return { handle };
}

/** For tests: whether sockets get their handle directly (not through the guess). */
export const directPipeHandles: boolean = Pipe !== undefined;
