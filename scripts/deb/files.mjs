// File helpers of scripts/build-deb.mjs: copying, walking and writing the
// staged package tree, file modes, md5sums and size of the tree.
import { chmodSync, closeSync, copyFileSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';

/** Copies the files below `base` that `keep` accepts (by path relative to it), with their modes. */
export function copyFiles(base, to, keep) {
  for (const path of walk(base)) {
    const rel = relative(base, path);
    const stats = lstatSync(path);
    if (!stats.isFile() || !keep(rel)) continue;
    mkdirSync(dirname(join(to, rel)), { recursive: true });
    copyFileSync(path, join(to, rel));
    chmodSync(join(to, rel), stats.mode & 0o777);
  }
}

/** Every path below `dir` (files, folders, symlinks). */
export function walk(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    out.push(path);
    if (entry.isDirectory()) out.push(...walk(path));
  }
  return out;
}

export function writeFile(path, content, mode = 0o644) {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, content);
  chmodSync(path, mode);
}

/** Whether the file begins with these bytes (`#!`, ELF magic). */
export function startsWith(path, magic) {
  const expected = Buffer.from(magic, 'latin1');
  const head = Buffer.alloc(expected.length);
  const fd = openSync(path, 'r');
  try {
    return readSync(fd, head, 0, head.length, 0) === head.length && head.equals(expected);
  } finally {
    closeSync(fd);
  }
}

/** Directories 0755; files 0644 unless they are scripts or programs that were executable. */
export function normalizeModes(root) {
  chmodSync(root, 0o755);
  for (const path of walk(root)) {
    const stats = lstatSync(path);
    if (stats.isSymbolicLink()) continue;
    if (stats.isDirectory()) chmodSync(path, 0o755);
    else chmodSync(path, (stats.mode & 0o100) !== 0 && startsWith(path, '#!') ? 0o755 : 0o644);
  }
}

/** Installed-Size: KiB of the files outside DEBIAN/. */
export function installedSize(root) {
  let bytes = 0;
  for (const path of walk(root)) {
    if (!path.includes(`${root}/DEBIAN`) && lstatSync(path).isFile()) bytes += statSync(path).size;
  }
  return Math.ceil(bytes / 1024);
}

/** DEBIAN/md5sums of the files outside DEBIAN/. */
export function md5sums(root) {
  return walk(root)
    .filter((p) => !relative(root, p).startsWith('DEBIAN') && lstatSync(p).isFile())
    .map((p) => `${createHash('md5').update(readFileSync(p)).digest('hex')}  ${relative(root, p)}\n`)
    .join('');
}
