// The Debian package (scripts/build-deb.mjs): built from the dist/ that
// `npm test` has just compiled, checked field by field, unpacked into a
// temporary root whose /usr/bin/qrelay then serves a real mail; its units
// pass systemd-analyze and the package passes lintian (where installed).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAIN, ROOT, removeDir, startDaemon, tempDir } from './helpers/daemon.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

interface PackageJson {
  readonly name: string;
  readonly version: string;
  readonly bin: Readonly<Record<string, string>>;
  readonly engines: { readonly node: string };
  readonly dependencies: Readonly<Record<string, string>>;
  readonly devDependencies: Readonly<Record<string, string>>;
}

const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
const LIB = `usr/lib/${PKG.name}`;
const UNITS = 'lib/systemd/system';
/** koffi is a native module: the package is built for this machine's architecture. */
const ARCH = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch];

function which(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** Every file and symlink below `dir`, relative to it ("usr/bin/qrelay", …). */
function listTree(dir: string, base = dir): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    return entry.isDirectory() ? listTree(path, base) : [relative(base, path)];
  });
}

/** "Key: value" fields of a control file (continuation lines joined with \n). */
function controlFields(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  let last = '';
  for (const line of text.split('\n')) {
    if (line.startsWith(' ')) fields.set(last, `${fields.get(last)}\n${line.slice(1)}`);
    else if (line.includes(':')) {
      last = line.slice(0, line.indexOf(':'));
      fields.set(last, line.slice(line.indexOf(':') + 1).trim());
    }
  }
  return fields;
}

describe('Debian package', { skip: which('dpkg-deb') ? false : 'dpkg-deb is not installed' }, () => {
  let work = '';
  let deb = '';
  let root = '';
  let files: string[] = [];

  before(() => {
    assert.ok(existsSync(MAIN), 'dist/ is built (npm test builds it first)');
    work = tempDir('qrelay-deb-test-');
    deb = execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-deb.mjs'), '--out', work], { encoding: 'utf8' }).trim();
    root = join(work, 'root');
    execFileSync('dpkg-deb', ['-x', deb, root]);
    files = listTree(root);
  });
  after(() => removeDir(work));

  it('is named qrelay_<version>_amd64.deb (on x64): koffi is a native module', () => {
    assert.equal(relative(work, deb), `${PKG.name}_${PKG.version}_${ARCH}.deb`);
  });

  it('has control fields from package.json: version, nodejs as "engines" asks, the libraries of koffi', () => {
    const fields = controlFields(execFileSync('dpkg-deb', ['-f', deb], { encoding: 'utf8' }));
    assert.equal(fields.get('Package'), PKG.name);
    assert.equal(fields.get('Version'), PKG.version);
    assert.equal(fields.get('Architecture'), ARCH);
    assert.match(fields.get('Maintainer') ?? '', /^.+ <[^@>]+@[^>]+>$/);
    const depends = (fields.get('Depends') ?? '').split(/,\s*/);
    const minimum = /^>=\s*(\S+)$/.exec(PKG.engines.node)?.[1];
    assert.ok(minimum !== undefined, `engines.node is ">=N": ${PKG.engines.node}`);
    assert.ok(depends.includes(`nodejs (>= ${minimum})`), `Depends: ${depends.join(', ')}`);
    for (const tool of ['init-system-helpers', 'systemd', 'libc6', 'libstdc++6']) {
      assert.ok(depends.some((d) => d.split(/\s*\|\s*/).some((alt) => alt.startsWith(`${tool} `) || alt === tool)), `Depends on ${tool}`);
    }
    assert.match(fields.get('Description') ?? '', /QMQP/);
    assert.ok(Number(fields.get('Installed-Size')) > 1000);
  });

  it('installs the config as a conffile and maintainer scripts that create the user, enable and stop the socket', () => {
    const control = join(work, 'control');
    execFileSync('dpkg-deb', ['-e', deb, control]);
    assert.equal(readFileSync(join(control, 'conffiles'), 'utf8'), '/etc/cm4all/qrelay/config.lua\n');
    const postinst = readFileSync(join(control, 'postinst'), 'utf8');
    assert.match(postinst, /systemd-sysusers .*qrelay\.conf/);
    assert.match(postinst, /deb-systemd-helper enable 'qrelay\.socket'/);
    assert.match(postinst, /deb-systemd-invoke start 'qrelay\.socket'/);
    assert.match(readFileSync(join(control, 'prerm'), 'utf8'), /deb-systemd-invoke stop 'qrelay\.socket' 'qrelay\.service'/);
    assert.match(readFileSync(join(control, 'postrm'), 'utf8'), /deb-systemd-helper purge 'qrelay\.socket'/);
    for (const script of ['postinst', 'prerm', 'postrm']) {
      assert.equal(spawnSync('sh', ['-n', join(control, script)]).status, 0, `${script} is valid sh`);
    }
  });

  it('puts the program under /usr/lib/qrelay and links every package.json bin into /usr/bin', () => {
    for (const [command, target] of Object.entries(PKG.bin)) {
      const link = join(root, 'usr/bin', command);
      assert.equal(readlinkSync(link), relative(join(root, 'usr/bin'), join(root, LIB, target)));
      assert.ok(existsSync(link), `${command} points at an existing file`);
    }
    assert.ok(files.includes(`${LIB}/package.json`));
    // every compiled module (CommonJS: dist/package.json says so) and every Lua file of the source tree
    const built = listTree(join(ROOT, 'dist')).filter((f) => f.endsWith('.js') || f.endsWith('.cjs') || f === 'package.json');
    assert.ok(built.includes('package.json') && built.includes('package-dir.cjs'));
    for (const file of built) assert.ok(files.includes(`${LIB}/dist/${file}`), file);
    const lua = listTree(join(ROOT, 'src')).filter((f) => f.endsWith('.lua'));
    assert.ok(lua.length > 0);
    for (const file of lua) assert.ok(files.includes(`${LIB}/src/${file}`), file);
    assert.deepEqual(files.filter((f) => f.endsWith('.map') && f.startsWith(`${LIB}/dist`)), []);
  });

  it('ships the production node_modules only, with the one linux-x64 (glibc) build of koffi', () => {
    const modules = `${LIB}/node_modules`;
    for (const name of Object.keys(PKG.dependencies)) assert.ok(files.includes(`${modules}/${name}/package.json`), name);
    for (const name of Object.keys(PKG.devDependencies)) assert.ok(!files.some((f) => f.startsWith(`${modules}/${name}/`)), `${name} is a dev dependency`);
    assert.deepEqual(
      files.filter((f) => f.endsWith('.node')),
      [`${modules}/@koromix/koffi-linux-${process.arch}/linux_${process.arch}/koffi.node`],
    );
    assert.deepEqual(files.filter((f) => /\.(?:cc|hh|h|S)$/.test(f)), [], 'no sources of native modules');
  });

  it('installs units that start /usr/bin/qrelay, the sysusers entry, the default config, docs and man page', () => {
    assert.ok(files.includes(`${UNITS}/qrelay.service`) && files.includes(`${UNITS}/qrelay.socket`));
    const service = readFileSync(join(root, UNITS, 'qrelay.service'), 'utf8');
    assert.match(service, /^ExecStart=\/usr\/bin\/qrelay\b/m);
    assert.match(readFileSync(join(root, UNITS, 'qrelay.socket'), 'utf8'), /^ListenStream=\/run\/cm4all\/qrelay\/socket$/m);
    const user = /^User=(\S+)$/m.exec(service)?.[1];
    assert.match(readFileSync(join(root, 'usr/lib/sysusers.d/qrelay.conf'), 'utf8'), new RegExp(`^u ${user} `, 'm'));
    assert.deepEqual(readFileSync(join(root, 'etc/cm4all/qrelay/config.lua')), readFileSync(join(ROOT, 'examples', 'systemd.lua')));
    const doc = `usr/share/doc/${PKG.name}`;
    for (const file of ['README.md', 'changelog.gz', 'copyright']) assert.ok(files.includes(`${doc}/${file}`), file);
    for (const optional of ['SECURITY.md', 'CHANGELOG.md']) {
      assert.equal(files.includes(`${doc}/${optional}`), existsSync(join(ROOT, optional)), optional);
    }
    if (existsSync(join(ROOT, 'docs'))) {
      for (const file of listTree(join(ROOT, 'docs'))) assert.ok(files.includes(`${doc}/docs/${file}`), `docs/${file}`);
    }
    const changelog = execFileSync('gzip', ['-dc', join(root, doc, 'changelog.gz')], { encoding: 'utf8' });
    assert.match(changelog, new RegExp(`^${PKG.name} \\(${PKG.version.replace(/\./g, '\\.')}\\) unstable; urgency=medium$`, 'm'));
    for (const command of Object.keys(PKG.bin)) assert.ok(files.includes(`usr/share/man/man1/${command}.1.gz`), `man page of ${command}`);
  });

  it('the unpacked /usr/bin/qrelay serves a mail with its own node_modules', async () => {
    const dir = join(root, 'srv');
    mkdirSync(dir);
    const saved = join(dir, 'saved.eml');
    const daemon = await startDaemon({
      command: [join(root, 'usr/bin/qrelay')],
      dir,
      // the original's output (QRELAY_LOG=quiet): nothing at all for a delivered mail
      env: { QRELAY_LOG: 'quiet' },
      config: `
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  m:insert_header('X-Json', json.dump({ uid = m.uid }))
  return m:exec_raw('/bin/sh', '-c', 'cat > "$0"; printf delivered', ${JSON.stringify(saved)})
end)`,
    });
    try {
      const answer = await send(join(dir, 'qrelay.sock'), qmqpRequest('Subject: packaged\r\n\r\nhello\r\n', 'alice@example.com', ['bob@example.org']));
      assert.equal(answer, '10:Kdelivered,', daemon.stderr());
      const uid = process.geteuid!();
      assert.equal(
        readFileSync(saved, 'utf8'),
        `X-Json: {"uid":${uid}}\r\nReceived: from PID=${process.pid} UID=${uid} with QMQP\r\nSubject: packaged\r\n\r\nhello\r\n`,
      );
      assert.equal(daemon.stderr(), '');
    } finally {
      assert.equal(await daemon.stop(), 0);
    }
  });

  it('the shipped config loads and asks for the sockets systemd passes', () => {
    const r = spawnSync(join(root, 'usr/bin/qrelay'), ['--config', join(root, 'etc/cm4all/qrelay/config.lua')], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.stderr, 'No systemd socket\nNo QMQP listeners configured\n');
    assert.equal(r.status, 1);
  });

  it('has units systemd-analyze verify accepts', { skip: which('systemd-analyze') ? false : 'systemd-analyze is not installed' }, () => {
    // verify insists that ExecStart exists on this host: point it at the unpacked command
    const units = join(work, 'units');
    mkdirSync(units);
    const names = readdirSync(join(root, UNITS));
    for (const name of names) {
      const text = readFileSync(join(root, UNITS, name), 'utf8').replaceAll('/usr/bin/', `${join(root, 'usr/bin')}/`);
      writeFileSync(join(units, name), text);
    }
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', ...names.map((n) => join(units, n))], { encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.stderr, '');
    assert.equal(r.status, 0);
  });

  it('passes lintian without errors', { skip: which('lintian') ? false : 'lintian is not installed' }, () => {
    const r = spawnSync('lintian', ['--fail-on', 'error', deb], { encoding: 'utf8', timeout: 300_000 });
    const errors = r.stdout.split('\n').filter((l) => l.startsWith('E:'));
    assert.deepEqual(errors, []);
    assert.equal(r.status, 0, r.stdout + r.stderr);
  });
});
