#!/usr/bin/env node
// Builds the Debian package qrelay_<version>_<arch>.deb with dpkg-deb.
//
//   npm run deb                          (builds dist/ first, writes build/deb/)
//   node scripts/build-deb.mjs [--out DIR]   (packs the dist/ already built)
//
// No network is used: the production node_modules are copied from
// ./node_modules (installed by `npm ci`) as package-lock.json lists them,
// without the dev dependencies and without prebuilt binaries for other
// platforms. Whatever exists in the tree is picked up: the bins of
// package.json "bin", the units in systemd/, README, SECURITY.md, docs/,
// CHANGELOG.md, LICENSE, examples/, man/.
//
// The package is laid out like this:
//   /usr/lib/qrelay/{package.json,dist,src/lua,node_modules}   the program
//   /usr/bin/<bin>  -> ../lib/qrelay/<bin path>               relative symlinks
//   /lib/systemd/system/qrelay.{service,socket}               systemd units
//   /usr/lib/sysusers.d/qrelay.conf                           the system user
//   /etc/cm4all/qrelay/config.lua                             conffile (examples/systemd.lua)
//   /usr/share/doc/qrelay/                                    docs, changelog.gz, copyright
//   /usr/share/man/manN/                                      man/*.N
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { debianChangelog } from './deb/changelog.mjs';
import { copyFiles, installedSize, md5sums, normalizeModes, startsWith, walk, writeFile } from './deb/files.mjs';
import { bundledModules, copyrightFile } from './deb/copyright.mjs';
import { maintainerScripts } from './deb/maintainer-scripts.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { values: options } = parseArgs({ options: { out: { type: 'string', default: join(ROOT, 'build', 'deb') } } });

const pkg = readJson('package.json');
const lock = readJson('package-lock.json');
const NAME = pkg.name;
const LIB = `usr/lib/${NAME}`;
const DOC = `usr/share/doc/${NAME}`;
const CONFIG = 'etc/cm4all/qrelay/config.lua';
// the architecture of this machine, whose prebuilt native modules npm ci installed and the package ships
const DEBIAN_ARCH = { x64: 'amd64', arm64: 'arm64' };
const TARGET = { os: 'linux', cpu: process.arch, debian: DEBIAN_ARCH[process.arch], libc: `linux_${process.arch}` };
const NATIVE_SOURCE = /\.(?:c|cc|cpp|cxx|h|hh|hpp|S|asm|inc|def|gyp|gypi)$/;

/** A reason the package cannot be built, printed without a stack trace. */
class BuildError extends Error {}

// the tree is staged as debian/<name> of a temporary folder, where dpkg-shlibdeps expects it
const stage = mkdtempSync(join(tmpdir(), 'qrelay-deb-'));
try {
  if (process.platform !== 'linux' || TARGET.debian === undefined) fail(`no Debian architecture for ${process.platform}-${process.arch}`);
  if (!existsSync(join(ROOT, 'dist', 'main.js'))) fail('dist/ is missing: run `npm run build` first (or `npm run deb`)');
  if (!existsSync(join(ROOT, 'node_modules'))) fail('node_modules/ is missing: run `npm ci` first');
  console.log(build(join(stage, 'debian', NAME)));
} catch (error) {
  if (!(error instanceof BuildError)) throw error;
  console.error(`build-deb: ${error.message}`);
  process.exitCode = 1;
} finally {
  rmSync(stage, { recursive: true, force: true });
}

function build(root) {
  // the program
  writeJson(join(root, LIB, 'package.json'), {
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    type: pkg.type,
    license: pkg.license,
  });
  copyTree('dist', join(root, LIB, 'dist'), (f) => !/\.(?:map|d\.ts)$/.test(f));
  copyTree('src', join(root, LIB, 'src'), (f) => f.endsWith('.lua'));
  copyProductionModules(join(root, LIB, 'node_modules'));

  // commands
  for (const [command, target] of Object.entries(binaries())) {
    const script = join(root, LIB, target);
    if (!existsSync(script)) {
      // a bin outside dist/ (e.g. a script of scripts/) is shipped as it is
      if (!existsSync(join(ROOT, target))) fail(`package.json bin "${command}": ${target} does not exist (not built?)`);
      writeFile(script, readFileSync(join(ROOT, target)));
    }
    chmodSync(script, 0o755);
    mkdirSync(join(root, 'usr/bin'), { recursive: true });
    symlinkSync(relative(join(root, 'usr/bin'), script), join(root, 'usr/bin', command));
  }

  // systemd integration
  for (const file of listFiles('systemd')) {
    const source = readFileSync(join(ROOT, 'systemd', file), 'utf8');
    if (file.endsWith('.service')) checkExecStart(file, source);
    const destination = file.endsWith('.sysusers')
      ? `usr/lib/sysusers.d/${file.replace(/\.sysusers$/, '.conf')}`
      : file.endsWith('.tmpfiles')
        ? `usr/lib/tmpfiles.d/${file.replace(/\.tmpfiles$/, '.conf')}`
        : `lib/systemd/system/${file}`;
    writeFile(join(root, destination), source);
  }
  writeFile(join(root, CONFIG), readFileSync(join(ROOT, 'examples', 'systemd.lua')));

  // documentation
  for (const doc of ['README.md', 'SECURITY.md', 'CHANGELOG.md']) {
    if (existsSync(join(ROOT, doc))) writeFile(join(root, DOC, doc), readFileSync(join(ROOT, doc)));
  }
  for (const folder of ['docs', 'examples']) {
    if (existsSync(join(ROOT, folder))) copyTree(folder, join(root, DOC, folder), () => true);
  }
  if (existsSync(join(ROOT, 'man'))) {
    for (const page of listFiles('man').filter((f) => /\.[1-8]$/.test(f))) {
      writeFile(join(root, `usr/share/man/man${page.slice(-1)}`, `${page}.gz`), gzipSync(readFileSync(join(ROOT, 'man', page)), { level: 9 }));
    }
  }
  const date = buildDate();
  writeFile(join(root, DOC, 'changelog.gz'), gzipSync(debianChangelog({ name: NAME, version: pkg.version, maintainer: maintainer(), date, markdown: readOptional('CHANGELOG.md') }), { level: 9 }));
  writeFile(join(root, DOC, 'copyright'), copyrightFile({ pkg, license: readOptional('LICENSE'), modules: bundledModules(join(root, LIB, 'node_modules')) }));
  writeFile(join(root, `usr/share/lintian/overrides/${NAME}`), readFileSync(join(ROOT, 'scripts', 'deb', 'lintian-overrides')));

  normalizeModes(root);
  const arch = hasNativeCode(join(root, LIB)) ? TARGET.debian : 'all';

  // control area
  const units = listFiles('systemd');
  const scripts = maintainerScripts({
    sysusers: units.filter((f) => f.endsWith('.sysusers')).map((f) => f.replace(/\.sysusers$/, '.conf')),
    sockets: units.filter((f) => f.endsWith('.socket')),
    services: units.filter((f) => f.endsWith('.service')),
  });
  for (const [name, text] of Object.entries(scripts)) writeFile(join(root, 'DEBIAN', name), text, 0o755);
  writeFile(join(root, 'DEBIAN', 'conffiles'), `/${CONFIG}\n`);
  writeFile(join(root, 'DEBIAN', 'md5sums'), md5sums(root));
  writeFile(join(root, 'DEBIAN', 'control'), control(root, arch));

  mkdirSync(options.out, { recursive: true });
  const debFile = join(options.out, `${NAME}_${pkg.version}_${arch}.deb`);
  execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, debFile], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, SOURCE_DATE_EPOCH: String(Math.floor(date.getTime() / 1000)) },
  });
  return debFile;
}

/** package.json "bin" as { command: path }. */
function binaries() {
  return typeof pkg.bin === 'string' ? { [NAME]: pkg.bin } : (pkg.bin ?? {});
}

/** The packaged unit must start the packaged command. */
function checkExecStart(file, text) {
  for (const line of text.split('\n').filter((l) => l.startsWith('ExecStart='))) {
    const program = line.slice('ExecStart='.length).replace(/^[-@:+!]+/, '').split(/\s+/)[0];
    const command = program.startsWith('/usr/bin/') ? program.slice('/usr/bin/'.length) : undefined;
    if (command === undefined || !(command in binaries())) fail(`systemd/${file}: ExecStart runs ${program}, not one of the packaged /usr/bin commands`);
  }
}

/**
 * Copies the packages package-lock.json marks as needed at run time (not
 * "dev") from ./node_modules; optional packages for another os/cpu are left
 * out, and so are prebuilt binaries for other C libraries (musl).
 */
function copyProductionModules(destination) {
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '' || entry.dev || entry.link) continue;
    if (!matches(entry.os, TARGET.os) || !matches(entry.cpu, TARGET.cpu)) continue;
    const source = join(ROOT, path);
    if (!existsSync(source)) {
      if (entry.optional) continue;
      fail(`${path} is missing: run \`npm ci\``);
    }
    copyTree(path, join(destination, relative('node_modules', path)), (file) => {
      const parts = file.split('/');
      // nested node_modules are entries of their own
      if (parts.includes('node_modules')) return false;
      // npm's and editors' dot files, sources of native modules (prebuilt binaries are shipped)
      if (parts.some((p) => p.startsWith('.')) || NATIVE_SOURCE.test(file)) return false;
      // prebuilt binaries for other targets (e.g. musl_x64 beside linux_x64)
      return !parts.some((p) => /^(?:linux|musl|darwin|win32|freebsd|openbsd|android)_/.test(p) && p !== TARGET.libc);
    });
  }
}

function matches(list, value) {
  return list === undefined || list.includes(value);
}

function hasNativeCode(folder) {
  return walk(folder).some((path) => lstatSync(path).isFile() && startsWith(path, '\x7fELF'));
}

/** Depends: a nodejs that satisfies "engines", the tools the maintainer scripts call, the libraries of native modules. */
function control(root, arch) {
  const depends = [nodeDependency(pkg.engines?.node), 'init-system-helpers (>= 1.54~)', 'systemd | systemd-standalone-sysusers | systemd-sysusers'];
  if (arch !== 'all') depends.push(...sharedLibraryDependencies(root));
  const [summary, ...paragraphs] = description();
  const fields = {
    Package: NAME,
    Version: pkg.version,
    Architecture: arch,
    Maintainer: maintainer(),
    'Installed-Size': String(installedSize(root)),
    Depends: depends.join(', '),
    Section: 'mail',
    Priority: 'optional',
    ...(pkg.homepage ? { Homepage: pkg.homepage } : {}),
    Description: `${summary}\n${paragraphs.map((p) => wrap(p, 78).map((l) => ` ${l}`).join('\n')).join('\n .\n')}`,
  };
  return Object.entries(fields).map(([k, v]) => `${k}: ${v}\n`).join('');
}

/** `>=20`, `>=20.6.0` → `nodejs (>= 20)`, `nodejs (>= 20.6.0)`; anything else is refused. */
function nodeDependency(range) {
  const match = /^\s*>=\s*(\d+(?:\.\d+){0,2})\s*$/.exec(range ?? '');
  if (match === null) fail(`package.json engines.node "${range}": only ">=VERSION" can be turned into a Debian dependency`);
  return `nodejs (>= ${match[1]})`;
}

/** dpkg-shlibdeps over every ELF object (e.g. koffi.node): libc6, libstdc++6, … */
function sharedLibraryDependencies(root) {
  const work = dirname(dirname(root)); // root is WORK/debian/<name>
  const objects = walk(join(root, LIB)).filter((p) => lstatSync(p).isFile() && startsWith(p, '\x7fELF'));
  writeFile(join(work, 'debian', 'control'), `Source: ${NAME}\n\nPackage: ${NAME}\nArchitecture: any\n`);
  // Node-API symbols come from the node binary, not from a library: no warnings about them
  const out = execFileSync('dpkg-shlibdeps', ['-O', '--warnings=0', ...objects.map((p) => `-e${relative(work, p)}`)], { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const value = /^shlibs:Depends=(.*)$/m.exec(out)?.[1] ?? '';
  return value === '' ? [] : value.split(/,\s*/);
}

/** The README's first paragraph, unwrapped, as the long description. */
function description() {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const first = readme.split(/\n\s*\n/).find((p) => !p.startsWith('#') && p.trim() !== '') ?? '';
  const text = first.replace(/\s+/g, ' ').replace(/`/g, '').trim();
  return [pkg.description, text];
}

/** DEBFULLNAME/DEBEMAIL as Debian tools use them, else package.json "author". */
function maintainer() {
  if (process.env.DEBEMAIL) return `${process.env.DEBFULLNAME ?? NAME} <${process.env.DEBEMAIL}>`;
  const author = typeof pkg.author === 'string' ? pkg.author : pkg.author && `${pkg.author.name} <${pkg.author.email}>`;
  if (!author || !/<[^@>]+@[^>]+>/.test(author)) fail('no maintainer: set package.json "author" to "Name <email>" (or DEBFULLNAME and DEBEMAIL)');
  return author;
}

/** The date of the last commit, so that rebuilding the same tree gives the same package. */
function buildDate() {
  if (process.env.SOURCE_DATE_EPOCH) return new Date(Number(process.env.SOURCE_DATE_EPOCH) * 1000);
  try {
    return new Date(Number(execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8' }).trim()) * 1000);
  } catch {
    return new Date();
  }
}

function wrap(text, width) {
  const lines = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line === '' ? word : `${line} ${word}`;
  }
  if (line !== '') lines.push(line);
  return lines;
}

// --- small helpers ---

/** Copies the files of ROOT/from that `keep` accepts (by path relative to it), with their modes. */
function copyTree(from, to, keep) {
  copyFiles(join(ROOT, from), to, keep);
}

function listFiles(folder) {
  return readdirSync(join(ROOT, folder)).filter((f) => statSync(join(ROOT, folder, f)).isFile()).sort();
}

function writeJson(path, value) {
  writeFile(path, `${JSON.stringify(value, null, 2)}\n`);
}

function readJson(file) {
  return JSON.parse(readFileSync(join(ROOT, file), 'utf8'));
}

function readOptional(file) {
  return existsSync(join(ROOT, file)) ? readFileSync(join(ROOT, file), 'utf8') : undefined;
}

function fail(message) {
  throw new BuildError(message);
}
