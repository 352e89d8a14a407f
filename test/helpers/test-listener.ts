// A listening Unix socket in a temporary folder for the tests of one
// describe block: made before them, closed and removed after.
import { join } from 'node:path';
import { after, before } from 'node:test';
import { acceptConnection, closeFd, connectSocket, listenUnix } from '../../src/native/linux.js';
import { removeDir, tempDir, waitFor } from './daemon.js';

export interface TestListener {
  /** The temporary folder (for other files of the tests). */
  readonly dir: string;
  /** The socket file. */
  readonly path: string;
  /** A descriptor connected to the listener (blocking: connectSocket's default here), not yet accepted. */
  connect(): number;
  /** The next connection's accepted descriptor (waits up to 5 s). */
  accept(): Promise<number>;
}

/** Registers before/after hooks of the enclosing describe block; the fields are valid inside its tests. */
export function testListener(prefix: string): TestListener {
  let dir = '';
  let path = '';
  let fd = -1;
  before(() => {
    dir = tempDir(prefix);
    path = join(dir, 'l.sock');
    fd = listenUnix(Buffer.from(path), false, 8, path);
  });
  after(() => {
    closeFd(fd);
    removeDir(dir);
  });
  return {
    get dir() {
      return dir;
    },
    get path() {
      return path;
    },
    connect: () => connectSocket({ family: 'unix', name: Buffer.from(path), abstract: false }, 'stream', false).fd,
    accept: async () => {
      let accepted: number | undefined;
      await waitFor(() => (accepted = acceptConnection(fd)) !== undefined, 5_000, 'the connection');
      return accepted!;
    },
  };
}
