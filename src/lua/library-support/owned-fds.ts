// The descriptors one library opened.  Its primitives act only on these: a
// script that digs a primitive out with the debug library still cannot
// send on, or close, any other descriptor of the daemon.
import { closeFd } from '../../native/linux.js';

const EBADF_TEXT = 'Bad file descriptor';

export class OwnedFds {
  private readonly fds = new Set<number>();

  add(fd: number): number {
    this.fds.add(fd);
    return fd;
  }

  /** The descriptor if this library opened it and it is still open. */
  owned(fd: unknown): number | undefined {
    const n = Number(fd);
    return this.fds.has(n) ? n : undefined;
  }

  close(fd: unknown): void {
    const n = this.owned(fd);
    if (n === undefined) return;
    this.fds.delete(n);
    closeFd(n);
  }

  static readonly badDescriptor = EBADF_TEXT;
}
