// Command line and startup (README.md, docs/configuration.md): every
// failure exits 1 with a message naming the file and line where there is one.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

function run(args: string[], env: NodeJS.ProcessEnv = {}): { status: number | null; stderr: string; stdout: string } {
  const r = spawnSync(process.execPath, [MAIN, ...args], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
  return { status: r.status, stderr: r.stderr, stdout: r.stdout };
}

function runConfig(config: string): { status: number | null; stderr: string; path: string; dir: string } {
  const dir = tempDir();
  const path = join(dir, 'config.lua');
  writeFileSync(path, config);
  const r = run(['--config', path], { TEST_DIR: dir });
  removeDir(dir);
  return { ...r, path, dir };
}

describe('command line', () => {
  it('refuses bad arguments naming the offending one, with the usage line and status 1', () => {
    for (const [args, named] of [
      [['--config'], "'--config"],
      [['a', 'b', 'c'], "'a'"],
      [['--verbose'], "'--verbose'"],
      [['--config', '/x', 'extra'], "'extra'"],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.status, 1, args.join(' '));
      assert.ok(r.stderr.includes(named), `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /\nUsage: qrelay \[--config PATH\] \[--workers N\|auto\]\n$/);
    }
  });
  it('takes --config PATH and --config=PATH', () => {
    for (const args of [['--config', '/nonexistent.lua'], ['--config=/nonexistent.lua']]) {
      const r = run(args);
      assert.equal(r.status, 1);
      assert.equal(r.stderr, 'cannot open /nonexistent.lua: No such file or directory\n');
    }
  });
  it('prints help on --help and -h and exits 0', () => {
    for (const flag of ['--help', '-h']) {
      const r = run([flag]);
      assert.equal(r.status, 0);
      assert.match(r.stdout, /Usage: qrelay \[--config PATH\]/);
      assert.match(r.stdout, /qrelay check /);
      assert.match(r.stdout, /qrelay send /);
    }
  });
  it('prints the version on --version', () => {
    const r = run(['--version']);
    assert.equal(r.status, 0);
    const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal(r.stdout, `qrelay ${version}\n`);
  });
  it('names the default config file when it cannot be opened', { skip: existsSync('/etc/cm4all/qrelay/config.lua') }, () => {
    const r = run([]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^cannot open \/etc\/cm4all\/qrelay\/config\.lua: /);
  });
});

describe('startup failures', () => {
  const cases: [string, string, RegExp][] = [
    ['no listener', 'x = 1', /^No QMQP listeners configured\n$/],
    ['syntax error', 'qmqp_listen(', /config\.lua:1: unexpected symbol near <eof>/],
    ['runtime error', '\n\nerror("boom")', /config\.lua:3: boom/],
    ['handler not a function', "qmqp_listen('/tmp/x', 42)", /config\.lua:1: bad argument #2 to 'qmqp_listen' \(function expected\)/],
    ['argument count', "qmqp_listen('/tmp/x')", /config\.lua:1: Invalid parameter count/],
    ['address type', 'qmqp_listen(5, function() end)', /bad argument #1 to 'qmqp_listen' \(path expected\)/],
    ['max_size too small', "max_size = 1023\nqmqp_listen('/tmp/x', function() end)", /^\/\S+\/config\.lua:2: `max_size` is too small: 1023 \(allowed: 1024 to 1073741824 bytes\)\n$/],
    ['max_size too large', "max_size = 1073741825\nqmqp_listen('/tmp/x', function() end)", /^\/\S+\/config\.lua:2: `max_size` is too large: 1073741825 \(allowed: 1024 to 1073741824 bytes\)\n$/],
    ['max_size not a number', "max_size = 'lots'\nqmqp_listen('/tmp/x', function() end)", /^`max_size` must be a number\n$/],
    ['max_bytes_in_flight not a number', "max_bytes_in_flight = 'lots'\nqmqp_listen(os.getenv('TEST_DIR') .. '/q.sock', function() end)", /^`max_bytes_in_flight` must be a positive number, not a string\n$/],
    ['max_bytes_in_flight zero', "max_bytes_in_flight = 0\nqmqp_listen(os.getenv('TEST_DIR') .. '/q.sock', function() end)", /^`max_bytes_in_flight` must be a positive number, not 0\n$/],
    ['path too long', `qmqp_listen('/tmp/${'x'.repeat(103)}', function() end)`, /Path is too long/],
    ['abstract too long', `qmqp_listen('@${'x'.repeat(108)}', function() end)`, /Path is too long/],
    ['bind failure', "qmqp_listen('/nonexistent-dir/x.sock', function() end)", /^Failed to bind to \/nonexistent-dir\/x\.sock: No such file or directory\n$/],
    ['sleep at load', 'sleep(1)', /yield/],
    ['resolver failure', "qmqp_resolve('nohost.invalid')", /Failed to resolve "nohost\.invalid":"628": /],
  ];
  for (const [name, config, expected] of cases) {
    it(name, () => {
      const r = runConfig(config);
      assert.equal(r.status, 1, r.stderr);
      assert.match(r.stderr, expected);
    });
  }

  it('reports a missing config file', () => {
    const r = run(['--config', '/nonexistent.lua']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'cannot open /nonexistent.lua: No such file or directory\n');
  });

  it('reports a missing config folder', () => {
    const r = run(['--config', '/missing/dir/config.lua']);
    assert.equal(r.status, 1);
    assert.equal(r.stderr, 'cannot open /missing/dir/config.lua: Failed to change to /missing/dir: No such file or directory\n');
  });

  it('ends cleanly on SIGTERM while the config loads: status 0, socket file removed', async () => {
    const dir = tempDir();
    const path = join(dir, 'config.lua');
    // the listener is bound, then the config keeps running for a second
    writeFileSync(path, "qmqp_listen(os.getenv('TEST_DIR') .. '/q.sock', function(m) return m:discard() end)\nlocal t = os.clock() while os.clock() - t < 1 do end\n");
    const child = spawn(process.execPath, [MAIN, '--config', path], { env: { ...process.env, TEST_DIR: dir }, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    // the socket exists: the config is running (its listener is bound first)
    await waitFor(() => existsSync(join(dir, 'q.sock')), 10_000, 'the listener');
    child.kill('SIGTERM');
    assert.equal(await exited, 0, stderr);
    assert.match(stderr, /caught signal 15/);
    assert.equal(existsSync(join(dir, 'q.sock')), false, 'socket file removed');
    removeDir(dir);
  });

  it('accepts 107-byte paths', async () => {
    const dir = tempDir('q');
    const path = join(dir, 'y'.repeat(107 - dir.length - 1));
    assert.equal(path.length, 107);
    const daemon = await startDaemon({ config: `qmqp_listen('${path}', function(m) return m:discard() end)`, dir, readyPath: path.slice(dir.length + 1) });
    assert.equal(await send(path, qmqpRequest('m', 'a@b.c', ['d@e.f'])), '10:Kdiscarded,');
    assert.equal(await daemon.stop(), 0);
    removeDir(dir);
  });
});

/** A daemon listening on `listenPath` (as written in the config) in a new folder with a stale file at qrelay.sock, started under umask 077. */
async function startOverStaleFile(listenPath: (dir: string) => string): Promise<{ daemon: RunningDaemon; dir: string; path: string }> {
  const dir = tempDir();
  const path = join(dir, 'qrelay.sock');
  writeFileSync(path, 'stale');
  const old = process.umask(0o077);
  try {
    const daemon = await startDaemon({ config: `qmqp_listen('${listenPath(dir)}', function(m) return m:discard() end)`, dir });
    return { daemon, dir, path };
  } finally {
    process.umask(old);
  }
}

describe('listening sockets', () => {
  it('unlinks a stale file, sets mode 0666 and removes its socket file at a clean exit', async () => {
    const { daemon, dir, path } = await startOverStaleFile((dir) => join(dir, 'qrelay.sock'));
    assert.equal(statSync(path).mode & 0o777, 0o666);
    assert.ok(statSync(path).isSocket());
    assert.equal(await send(path, qmqpRequest('m', 'a@b.c', ['d@e.f'])), '10:Kdiscarded,');
    assert.equal(await daemon.stop(), 0);
    assert.equal(existsSync(path), false);
    removeDir(dir);
  });

  it('refuses to take over a socket a running daemon accepts on; takes over a stale one', async () => {
    const dir = tempDir();
    const path = join(dir, 'qrelay.sock');
    const first = await startDaemon({ config: `qmqp_listen('${path}', function(m) return m:discard() end)`, dir });
    const second = run(['--config', join(dir, 'config.lua')]);
    assert.equal(second.status, 1);
    assert.equal(second.stderr, `Failed to bind to ${path}: ${path} is in use by a running process\n`);
    // the first daemon still has its socket and serves
    assert.equal(await send(path, qmqpRequest('m', 'a@b.c', ['d@e.f'])), '10:Kdiscarded,');
    // killed: the socket file stays behind, stale; a new daemon takes it over
    first.child.kill('SIGKILL');
    await first.exited;
    assert.ok(statSync(path).isSocket());
    const again = await startDaemon({
      config: `qmqp_listen('${path}', function(m) return m:reject() end)\nprint('listening')`,
      dir,
      ready: (stdout) => stdout.includes('listening'),
    });
    assert.equal(await send(path, qmqpRequest('m', 'a@b.c', ['d@e.f'])), '9:Drejected,');
    assert.equal(await again.stop(), 0);
    removeDir(dir);
  });

  it('treats relative paths like absolute ones: stale file removed, mode 0666, removed at exit', async () => {
    const { daemon, dir, path } = await startOverStaleFile(() => 'qrelay.sock');
    assert.equal(statSync(path).mode & 0o777, 0o666);
    assert.equal(await send(path, qmqpRequest('m', 'a@b.c', ['d@e.f'])), '10:Kdiscarded,');
    const second = run(['--config', join(dir, 'config.lua')]);
    assert.equal(second.status, 1);
    assert.equal(second.stderr, 'Failed to bind to qrelay.sock: qrelay.sock is in use by a running process\n');
    assert.equal(await daemon.stop(), 0);
    assert.equal(existsSync(path), false);
    removeDir(dir);
  });

  it('resolves relative paths against the config folder during load', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'lib'));
    writeFileSync(join(dir, 'lib', 'policy.lua'), 'return function(m) return m:reject() end\n');
    writeFileSync(join(dir, 'data.txt'), 'qrelay.sock\n');
    const config = `
local name = io.open('data.txt'):read('l')
package.path = './lib/?.lua;' .. package.path
local policy = require('policy')
qmqp_listen(name, dofile('lib/policy.lua'))
`;
    const daemon = await startDaemon({ config, dir });
    assert.equal(await send(join(dir, 'qrelay.sock'), qmqpRequest('m', 'a@b.c', ['d@e.f'])), '9:Drejected,');
    assert.equal(await daemon.stop(), 0);
    removeDir(dir);
  });

  it('serves a listener that a kept qmqp_listen reference adds at runtime', async () => {
    const dir = tempDir();
    const config = `
local listen, dir = qmqp_listen, os.getenv('TEST_DIR')
qmqp_listen(dir .. '/qrelay.sock', function(m)
  -- max_size is a startup global: gone at runtime, so it must be set again
  print('without max_size', pcall(listen, dir .. '/late.sock', function(m2) return m2:reject() end))
  max_size = 4096
  listen(dir .. '/late.sock', function(m2) return m2:reject() end)
  return m:discard()
end)
`;
    const daemon = await startDaemon({ config, dir });
    const mail = qmqpRequest('m', 'a@b.c', ['d@e.f']);
    assert.equal(await send(join(dir, 'qrelay.sock'), mail), '10:Kdiscarded,');
    assert.equal(await send(join(dir, 'late.sock'), mail), '9:Drejected,');
    assert.match(daemon.stdout(), /without max_size\tfalse\t`max_size` must be a number/);
    assert.equal(await daemon.stop(), 0);
    removeDir(dir);
  });

  it('listens on several sockets with one handler and per-listener max_size', async () => {
    const dir = tempDir();
    const config = `
local function h(m) return m:discard() end
max_size = 1024
qmqp_listen(os.getenv('TEST_DIR') .. '/a.sock', h)
max_size = '2048'
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', h)
`;
    const daemon = await startDaemon({ config, dir });
    const big = qmqpRequest('x'.repeat(1500), 'a@b.c', ['d@e.f']);
    assert.equal(await send(join(dir, 'qrelay.sock'), big), '10:Kdiscarded,');
    assert.equal(await send(join(dir, 'a.sock'), big), '34:Dmessage too large (max_size 1024),');
    assert.equal(await daemon.stop(), 0);
    removeDir(dir);
  });
});
