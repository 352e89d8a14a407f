// JavaScript side of `m.cgroup` (docs/mail.md; the objects live in
// libs/cgroup.lua): which cgroup the client process is in, the cgroup's
// directory beneath the cgroup2 mount, and its extended attributes.
import { constants, openSync } from 'node:fs';
import { fgetXattr, openDirectoryBeneath, SystemError, systemErrorText } from '../../native/linux.js';
import { CgroupLookupError, processCgroupPath } from '../../native/process-cgroup.js';
import type { LuaLibrary } from '../library.js';
import { LuaError } from '../lua-values.js';
import { OwnedFds } from '../library-support/owned-fds.js';

/** The cgroup2 mount; QRELAY_TEST_CGROUP_ROOT exists only so tests can mount their own. */
function cgroupRoot(): string {
  return process.env.QRELAY_TEST_CGROUP_ROOT ?? '/sys/fs/cgroup';
}

const XATTR_MAX = 4096;
const SHORT_NAME_LIMIT = 1024;

/** `t.NAME`: names without a dot (and shorter than 1024 bytes) are in the `user.` namespace. */
export function xattrName(name: string): Buffer {
  const full = !name.includes('.') && name.length < SHORT_NAME_LIMIT ? `user.${name}` : name;
  const nul = full.indexOf('\0'); // a C string ends at its first NUL
  return Buffer.from(nul < 0 ? full : full.slice(0, nul), 'latin1');
}

/** The root directory, opened once and kept: every cgroup directory is resolved beneath it. */
class CgroupRoot {
  private fd: number | undefined;

  open(): number {
    if (this.fd === undefined) {
      const root = cgroupRoot();
      try {
        this.fd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
      } catch (e) {
        throw new LuaError(`Failed to open "${root}": ${systemErrorText(e)}`);
      }
    }
    return this.fd;
  }
}

export const cgroupLibrary: LuaLibrary = {
  name: 'cgroup',
  primitives: ({ host }) => {
    const root = new CgroupRoot();
    const fds = new OwnedFds();
    return {
      // The mail's cgroup path, or nil (no credentials, no cgroup2 entry).
      cgroup_path: ([id]) => {
        const input = host.mailInput(Number(id));
        const credentials = input?.credentials;
        if (input === undefined || credentials === undefined) return undefined;
        try {
          return processCgroupPath(credentials.pid, input.peerPidfd());
        } catch (e) {
          if (e instanceof CgroupLookupError) throw new LuaError(e.message);
          throw e;
        }
      },
      // A read-only descriptor of the cgroup's directory.  openat2 with
      // RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS is the exact confinement the
      // original uses: `..` and symlinks cannot leave the root.
      open_directory: ([path]) => {
        // the leading `/` is dropped: `/` itself becomes "" and fails (ENOENT)
        const relative = String(path).replace(/^\//, '');
        try {
          return fds.add(openDirectoryBeneath(root.open(), Buffer.from(relative, 'latin1'), `Failed to open "${relative}"`));
        } catch (e) {
          if (e instanceof SystemError) throw new LuaError(e.message);
          throw e;
        }
      },
      // Re-read on every access; nil on any error (missing, larger than 4096 bytes …).
      xattr: ([fd, name]) => {
        const own = fds.owned(fd);
        return own === undefined ? undefined : fgetXattr(own, xattrName(String(name)), XATTR_MAX);
      },
      close_fd: ([fd]) => fds.close(fd),
    };
  },
};
