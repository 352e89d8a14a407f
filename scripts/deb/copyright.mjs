// usr/share/doc/qrelay/copyright: qrelay's own LICENSE, then every bundled
// Node.js module of /usr/lib/qrelay/node_modules with its license text, in
// the machine-readable format (DEP-5).
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * @param {{ pkg: { name: string, license?: string, homepage?: string },
 *           license?: string,
 *           modules: { path: string, name: string, version: string, license: string, text?: string }[] }} input
 * @returns {string}
 */
export function copyrightFile({ pkg, license, modules }) {
  const own = pkg.license ?? 'unknown';
  const paragraphs = [
    field('Format', 'https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/') + field('Upstream-Name', pkg.name) + (pkg.homepage ? field('Source', pkg.homepage) : ''),
    field('Files', '*') + field('Copyright', holders(license) ?? `the ${pkg.name} developers`) + field('License', own),
  ];
  for (const m of modules) {
    paragraphs.push(
      field('Files', `usr/lib/${pkg.name}/node_modules/${m.path}/*`) +
        field('Copyright', holders(m.text) ?? `the authors of ${m.name} ${m.version}`) +
        field('License', `${m.license}\n${body(licenseText(m))}`),
    );
  }
  // qrelay's own license text closes the file
  paragraphs.push(field('License', `${own}\n${body(license ?? `See https://spdx.org/licenses/${own}.html`)}`));
  return `${paragraphs.map((p) => p.trimEnd()).join('\n\n')}\n`;
}

// licenses Debian ships in /usr/share/common-licenses are referred to, not copied
const COMMON = new Map([
  ['Apache-2.0', 'Apache-2.0'],
  ['CC0-1.0', 'CC0-1.0'],
  ['MPL-1.1', 'MPL-1.1'],
  ['MPL-2.0', 'MPL-2.0'],
  ['GPL-2.0', 'GPL-2'], ['GPL-2.0-only', 'GPL-2'], ['GPL-2.0-or-later', 'GPL-2'],
  ['GPL-3.0', 'GPL-3'], ['GPL-3.0-only', 'GPL-3'], ['GPL-3.0-or-later', 'GPL-3'],
  ['LGPL-2.1', 'LGPL-2.1'], ['LGPL-2.1-only', 'LGPL-2.1'], ['LGPL-2.1-or-later', 'LGPL-2.1'],
  ['LGPL-3.0', 'LGPL-3'], ['LGPL-3.0-only', 'LGPL-3'], ['LGPL-3.0-or-later', 'LGPL-3'],
]);

function licenseText(m) {
  const common = COMMON.get(m.license);
  if (common !== undefined) return `On Debian systems, the complete text of the ${m.license} license can be found in\n/usr/share/common-licenses/${common}.`;
  return m.text ?? `No license file is shipped with ${m.name}; its package.json names ${m.license}.`;
}

function field(name, value) {
  return `${name}: ${value}\n`;
}

/** The "Copyright (c) …" lines of a license text, if any. */
function holders(text) {
  const lines = (text ?? '').split('\n').map((l) => l.trim()).filter((l) => /^copyright\b/i.test(l) && /\d{4}/.test(l));
  return lines.length === 0 ? undefined : lines.map((l) => l.replace(/^copyright\s*(?:\(c\)|©)?\s*/i, '')).join('\n ');
}

/** A license text as a DEP-5 continuation: indented, empty lines as " .". */
function body(text) {
  return text
    .replace(/\r\n/g, '\n')
    .trim()
    .split('\n')
    .map((l) => (l.trim() === '' ? ' .' : ` ${l.trimEnd()}`))
    .join('\n');
}

/** Name, version, license and license text of every bundled module. */
export function bundledModules(folder) {
  const found = [];
  const visit = (dir) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (name.startsWith('@')) visit(path);
      else if (existsSync(join(path, 'package.json'))) {
        const meta = JSON.parse(readFileSync(join(path, 'package.json'), 'utf8'));
        const licenseFile = readdirSync(path).find((f) => /^(?:licen[cs]e|copying)(?:\.(?:md|txt))?$/i.test(f));
        found.push({
          path: relative(folder, path),
          name: meta.name,
          version: meta.version,
          license: typeof meta.license === 'string' ? meta.license : (meta.license?.type ?? 'unknown'),
          text: licenseFile === undefined ? undefined : readFileSync(join(path, licenseFile), 'utf8'),
        });
        if (existsSync(join(path, 'node_modules'))) visit(join(path, 'node_modules'));
      }
    }
  };
  visit(folder);
  return found;
}
