// Which cgroup (v2) a process is in, from /proc/<pid>/cgroup, pinned
// against pid reuse by a pidfd when there is one (docs/mail.md).
import { closeSync, openSync, readSync } from 'node:fs';
import { systemErrorText } from './linux.js';

/** A lookup failure; the message is what the Lua script sees. */
export class CgroupLookupError extends Error {}

/** The buffer procfs files are read into, grown when a file fills it; reused by every lookup. */
let procBuffer = Buffer.allocUnsafe(4096);

/**
 * The whole content of a procfs file, as a view of the shared buffer (valid
 * until the next read): open, one read, close (procfs files report size 0,
 * so readFileSync's fstat and growing buffers are of no use here).  Both
 * files read here (/proc/PID/cgroup, /proc/self/fdinfo/FD) are made whole
 * by one show() call of a single_open seq_file and handed out in one read
 * when the buffer holds them, so a read that leaves room is the end; one
 * that fills the buffer is read on into a larger one.
 */
function readProcFile(path: string): Buffer {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    let length = 0;
    for (;;) {
      const room = procBuffer.length - length;
      const n = readSync(fd, procBuffer, length, room, null);
      length += n;
      if (n < room) return procBuffer.subarray(0, length);
      const larger = Buffer.allocUnsafe(procBuffer.length * 2);
      procBuffer.copy(larger, 0, 0, length);
      procBuffer = larger;
    }
  } catch (e) {
    throw new CgroupLookupError(`Failed to open "${path}": ${systemErrorText(e)}`);
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** The path of the first `<id>::<path>` line (empty controller list = cgroup v2) with a non-empty path. */
export function parseCgroupFile(content: Buffer): string | undefined {
  for (const line of content.toString('latin1').split('\n')) {
    const first = line.indexOf(':');
    if (first < 0 || line[first + 1] !== ':') continue;
    const path = line.slice(first + 2);
    if (path !== '') return path;
  }
  return undefined;
}

/** The pid a pidfd refers to: the `Pid:` line of its fdinfo (-1 once the process has exited). */
function pidfdPid(pidfd: number): number {
  const match = /^Pid:\s*(-?\d+)\s*$/m.exec(readProcFile(`/proc/self/fdinfo/${pidfd}`).toString('latin1'));
  if (match === null) throw new CgroupLookupError('No Pid in pidfd info');
  return Number(match[1]);
}

function checkPinned(pidfd: number, pid: number): void {
  const pinned = pidfdPid(pidfd);
  if (pinned === -1) throw new CgroupLookupError('Client process has already exited');
  if (pid > 0 && pinned !== pid) throw new CgroupLookupError('PID mismatch');
}

/**
 * The cgroup path of process `pid` (SO_PEERCRED), or undefined without a
 * cgroup2 entry.  With a pidfd the process is checked before and after the
 * read, so a pid reused meanwhile is noticed.
 */
export function processCgroupPath(pid: number, pidfd: number | undefined): string | undefined {
  if (pidfd !== undefined) checkPinned(pidfd, pid);
  // parsed before the re-check, which reads into the same buffer
  const path = parseCgroupFile(readProcFile(`/proc/${pid}/cgroup`));
  if (pidfd !== undefined) checkPinned(pidfd, pid);
  return path;
}
