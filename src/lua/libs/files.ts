// The JavaScript half of libs/files.lua: copies real files into the
// in-memory file system that Lua's io library works on, and back.
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { errnoOf, strerror } from '../../native/linux.js';
import type { LuaLibrary } from '../library.js';

interface EmscriptenFS {
  mkdir(path: string): void;
  writeFile(path: string, data: Uint8Array): void;
  readFile(path: string): Uint8Array;
  unlink(path: string): void;
}

/** mkdir -p inside the in-memory file system (its build lacks mkdirTree). */
function makeDirectories(fs: EmscriptenFS, path: string): void {
  let current = '';
  for (const part of path.split('/').filter((p) => p !== '')) {
    current += '/' + part;
    try {
      fs.mkdir(current);
    } catch {
      // exists already
    }
  }
}

/** Where a real file is mirrored inside the in-memory file system. */
function stagedPath(real: string): string {
  return '/real' + real;
}

export const filesLibrary: LuaLibrary = {
  name: 'files',
  primitives: ({ lua }) => {
    const fs = lua.fs as EmscriptenFS;
    return {
      stage: ([path, mustExist]) => {
        const given = String(path);
        const real = resolve(given);
        const staged = stagedPath(real);
        makeDirectories(fs, dirname(staged));
        try {
          if (statSync(real).isDirectory()) return [undefined, `${given}: Is a directory`, 21];
          fs.writeFile(staged, readFileSync(real));
        } catch (e) {
          const errno = errnoOf(e) ?? 2;
          if (mustExist === true || errno !== 2) return [undefined, `${given}: ${strerror(errno)}`, errno];
          try {
            fs.unlink(staged);
          } catch {
            // nothing staged before
          }
        }
        return staged;
      },
      unstage: ([staged]) => {
        const path = String(staged);
        writeFileSync(path.slice('/real'.length), fs.readFile(path));
      },
      exists: ([path]) => existsSync(resolve(String(path))),
    };
  },
  dryRun: ({ host }) => ({
    unstage: () => host.refuse('io.write'),
  }),
};
