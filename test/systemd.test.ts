// Running under systemd (docs/systemd.md, docs/configuration.md): socket
// activation, sd_notify and watchdog, SIGHUP reload, graceful shutdown.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, ROOT, removeDir, startDaemon, tempDir, waitFor } from './helpers/daemon.js';
import { unixReceiver } from './helpers/datagram-receiver.js';
import { exchange, qmqpRequest, send } from './helpers/qmqp.js';

const MAIL = qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'alice@example.com', ['bob@example.org']);

function datagramTexts(datagrams: Buffer[]): string[] {
  return datagrams.map((d) => d.toString());
}

describe('socket activation', () => {
  it('adopts the listening socket passed as fd 3 and serves mail through it', async () => {
    const dir = tempDir();
    const sock = join(dir, 'activated.sock');
    writeFileSync(join(dir, 'config.lua'), "qmqp_listen(systemd, function(m) return m:reject() end)\nprint('up')\n");
    // a small launcher in the role of systemd: bind, listen, pass as fd 3, exec
    const launcher = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1]); s.listen(16)
os.dup2(s.fileno(), 3)
os.set_inheritable(3, True)
os.environ['LISTEN_FDS'] = '1'
os.environ['LISTEN_PID'] = str(os.getpid())
os.execv(sys.argv[2], [sys.argv[2], sys.argv[3], '--config', sys.argv[4]])
`;
    // QRELAY_LOG=quiet: the original's output, which is none for this mail
    const child = spawn('python3', ['-c', launcher, sock, process.execPath, MAIN, join(dir, 'config.lua')], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, QRELAY_LOG: 'quiet' },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    try {
      await waitFor(() => out.includes('up'), 15_000, 'startup');
      assert.equal(await send(sock, MAIL), '9:Drejected,');
      assert.equal(err, '');
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.on('exit', r));
      removeDir(dir);
    }
  });

  it('logs "No systemd socket" without passed sockets, also for LISTEN_PID of another process', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'config.lua'), 'qmqp_listen(systemd, function(m) return m:reject() end)\nqmqp_listen(systemd, function(m) return m:reject() end)\n');
    for (const env of [{}, { LISTEN_FDS: '1', LISTEN_PID: '1' }]) {
      const r = spawnSync(process.execPath, [MAIN, '--config', join(dir, 'config.lua')], { encoding: 'utf8', env: { ...process.env, ...env }, timeout: 20_000 });
      assert.equal(r.status, 1);
      assert.equal(r.stderr, 'No systemd socket\nNo systemd socket\nNo QMQP listeners configured\n');
    }
    removeDir(dir);
  });
});

describe('sd_notify and watchdog', () => {
  it('sends READY=1 once the socket accepts mail, and watchdog pings at half the interval', async () => {
    const dir = tempDir();
    const notify = unixReceiver(join(dir, 'notify.sock'));
    const daemon = await startDaemon({
      config: "qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)",
      dir,
      env: { NOTIFY_SOCKET: join(dir, 'notify.sock'), WATCHDOG_USEC: '200000' },
      ready: () => true,
    });
    try {
      assert.equal((await notify.next(15_000)).toString(), 'READY=1');
      // the moment READY=1 arrives, mail must be accepted
      assert.equal(await send(join(dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
      const started = Date.now();
      const before = notify.datagrams.length;
      await new Promise((r) => setTimeout(r, 1000));
      while (notify.datagrams.length < before + 12) {
        try {
          await notify.next(50);
        } catch {
          break;
        }
      }
      const pings = datagramTexts(notify.datagrams.slice(before)).filter((t) => t === 'WATCHDOG=1').length;
      const elapsed = Date.now() - started;
      const expected = elapsed / 100;
      assert.ok(pings >= expected * 0.5 && pings <= expected * 1.5, `${pings} pings in ${elapsed} ms`);
    } finally {
      assert.equal(await daemon.stop(), 0);
      await notify.close();
      removeDir(dir);
    }
  });

  it('sends nothing and still runs without NOTIFY_SOCKET; reaches abstract notify sockets', async () => {
    const dir = tempDir();
    const name = `qrelay-notify-${process.pid}-${Date.now()}`;
    const notify = unixReceiver(name, true);
    const daemon = await startDaemon({
      config: "qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)",
      dir,
      env: { NOTIFY_SOCKET: '@' + name },
    });
    try {
      assert.equal((await notify.next(15_000)).toString(), 'READY=1');
      process.kill(daemon.child.pid!, 'SIGTERM');
      assert.equal((await notify.next(5_000)).toString(), 'STOPPING=1');
      assert.equal(await daemon.exited, 0);
    } finally {
      await daemon.stop();
      await notify.close();
      removeDir(dir);
    }
  });
});

const RELOAD_CONFIG = `
local answer = 'discard'
local runs = 0
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  if answer == 'reject' then return m:reject() end
  return m:discard()
end)
function reload()
  runs = runs + 1
  local run = runs
  print('reload start ' .. run)
  if os.getenv('RELOAD_SLEEP') then sleep(tonumber(os.getenv('RELOAD_SLEEP'))) end
  answer = 'reject'
  print('reload end ' .. run)
  if run == 1 and os.getenv('RELOAD_FAIL') then error('reload failed on purpose') end
end
`;

describe('SIGHUP reload', () => {
  it('runs reload(), which changes what the handler answers, between RELOADING=1 and READY=1', async () => {
    const dir = tempDir();
    const notify = unixReceiver(join(dir, 'notify.sock'));
    const daemon = await startDaemon({ config: RELOAD_CONFIG, dir, env: { NOTIFY_SOCKET: join(dir, 'notify.sock') } });
    const sock = join(dir, 'qrelay.sock');
    try {
      assert.equal((await notify.next()).toString(), 'READY=1');
      assert.equal(await send(sock, MAIL), '10:Kdiscarded,');
      process.kill(daemon.child.pid!, 'SIGHUP');
      assert.match((await notify.next()).toString(), /^RELOADING=1\nMONOTONIC_USEC=\d+$/);
      assert.equal((await notify.next()).toString(), 'READY=1');
      assert.equal(await send(sock, MAIL), '9:Drejected,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      await notify.close();
      removeDir(dir);
    }
  });

  it('logs a failing reload and keeps serving', async () => {
    const daemon = await startDaemon({ config: RELOAD_CONFIG, env: { RELOAD_FAIL: '1' } });
    try {
      process.kill(daemon.child.pid!, 'SIGHUP');
      await waitFor(() => daemon.stderr().includes('reload failed on purpose'), 5000, 'reload error');
      await daemon.waitForStderr(/^[^[].*config\.lua:\d+: reload failed on purpose$/m);
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '9:Drejected,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });

  it('never runs two reloads at once and coalesces SIGHUPs into one more run', async () => {
    const daemon = await startDaemon({ config: RELOAD_CONFIG, env: { RELOAD_SLEEP: '0.4' } });
    try {
      process.kill(daemon.child.pid!, 'SIGHUP');
      await waitFor(() => daemon.stdout().includes('reload start 1'), 5000, 'first reload');
      for (let i = 0; i < 3; i++) process.kill(daemon.child.pid!, 'SIGHUP');
      await waitFor(() => daemon.stdout().includes('reload end 2'), 5000, 'second reload');
      await new Promise((r) => setTimeout(r, 800));
      const lines = daemon.stdout().trim().split('\n');
      assert.deepEqual(lines, ['reload start 1', 'reload end 1', 'reload start 2', 'reload end 2']);
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });

  it('ignores SIGHUP when the script defines no reload()', async () => {
    const daemon = await startDaemon({
      config: "qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)",
      env: { QRELAY_LOG: 'quiet' },
    });
    try {
      process.kill(daemon.child.pid!, 'SIGHUP');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
      assert.equal(daemon.stderr(), '');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });
});

const SLOW_CONFIG = `
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  print('handling')
  sleep(tonumber(os.getenv('HANDLER_SLEEP')))
  return m:discard()
end)
`;

describe('shutdown', () => {
  it('lets a mail in flight finish, stops accepting, and exits 0', async () => {
    const daemon = await startDaemon({ config: SLOW_CONFIG, env: { HANDLER_SLEEP: '0.5' } });
    const sock = join(daemon.dir, 'qrelay.sock');
    try {
      const inFlight = exchange(sock, MAIL);
      await waitFor(() => daemon.stdout().includes('handling'), 5000, 'handler');
      const started = Date.now();
      process.kill(daemon.child.pid!, 'SIGTERM');
      await waitFor(() => daemon.stderr().includes('shutting down'), 5000, 'shutdown message');
      const refused = await exchange(sock, MAIL).catch((e: NodeJS.ErrnoException) => e.code);
      assert.ok(refused === 'ECONNREFUSED' || refused === 'ENOENT' || (typeof refused === 'object' && refused.response.length === 0), String(refused));
      assert.equal((await inFlight).response.toString(), '10:Kdiscarded,');
      assert.equal(await daemon.exited, 0);
      assert.ok(Date.now() - started < 4000);
      await daemon.waitForStderr(new RegExp(`^caught signal 15, shutting down \\(pid=${daemon.child.pid}\\)$`, 'm'));
      assert.equal(existsSync(sock), false, 'a clean exit removes the socket file');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('cancels what is still running when the grace period ends', async () => {
    const daemon = await startDaemon({ config: SLOW_CONFIG, env: { HANDLER_SLEEP: '30', QRELAY_SHUTDOWN_GRACE_MS: '300' } });
    try {
      const inFlight = exchange(join(daemon.dir, 'qrelay.sock'), MAIL);
      await waitFor(() => daemon.stdout().includes('handling'), 5000, 'handler');
      const started = Date.now();
      process.kill(daemon.child.pid!, 'SIGINT');
      assert.equal((await inFlight).response.length, 0);
      assert.equal(await daemon.exited, 0);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 3000, `${elapsed} ms`);
      await daemon.waitForStderr(/caught signal 2, shutting down/);
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('drops a client still sending its request when the grace period ends: a trickling client cannot hold the shutdown', async () => {
    const daemon = await startDaemon({ config: SLOW_CONFIG, env: { HANDLER_SLEEP: '0', QRELAY_SHUTDOWN_GRACE_MS: '300' } });
    const client = createConnection(join(daemon.dir, 'qrelay.sock'));
    client.on('error', () => {});
    let answer = '';
    client.on('data', (d: Buffer) => (answer += d.toString('latin1')));
    const closed = new Promise((resolve) => client.once('close', resolve));
    // one byte of a 1000-byte request every 100 ms (within the 5 s receive idle limit), at most 200 of them
    let sent = 0;
    const trickle = setInterval(() => {
      if (sent === 0) client.write('1000:');
      client.write('x');
      if (++sent === 200) clearInterval(trickle);
    }, 100);
    try {
      await waitFor(() => sent >= 3, 5000, 'the client trickling');
      const started = Date.now();
      process.kill(daemon.child.pid!, 'SIGTERM');
      assert.equal(await daemon.exited, 0);
      const elapsed = Date.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 3000, `${elapsed} ms`);
      await closed;
      assert.equal(answer, '');
    } finally {
      clearInterval(trickle);
      client.destroy();
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('dies at once from a second signal', async () => {
    const daemon = await startDaemon({ config: SLOW_CONFIG, env: { HANDLER_SLEEP: '30', QRELAY_SHUTDOWN_GRACE_MS: '20000' } });
    try {
      void exchange(join(daemon.dir, 'qrelay.sock'), MAIL).catch(() => undefined);
      await waitFor(() => daemon.stdout().includes('handling'), 5000, 'handler');
      process.kill(daemon.child.pid!, 'SIGQUIT');
      await waitFor(() => daemon.stderr().includes('shutting down'), 5000, 'shutdown message');
      process.kill(daemon.child.pid!, 'SIGTERM');
      const code = await daemon.exited;
      assert.equal(code, null);
      assert.equal(daemon.child.signalCode, 'SIGTERM');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('survives SIGPIPE', async () => {
    const daemon = await startDaemon({ config: "qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)" });
    try {
      process.kill(daemon.child.pid!, 'SIGPIPE');
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });
});

describe('shipped unit files', () => {
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  it('pass systemd-analyze verify', { skip: analyze.status !== 0 ? 'systemd-analyze is not installed' : false }, () => {
    const dir = tempDir();
    // verify checks that ExecStart exists: point it at this checkout's binary
    for (const unit of ['qrelay.service', 'qrelay.socket']) {
      const text = spawnSync('cat', [join(ROOT, 'systemd', unit)], { encoding: 'utf8' }).stdout.replaceAll('/usr/bin/qrelay', join(ROOT, 'dist', 'main.js'));
      writeFileSync(join(dir, unit), text);
    }
    const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'qrelay.service'), join(dir, 'qrelay.socket')], { encoding: 'utf8', timeout: 30_000 });
    const problems = (r.stderr + r.stdout)
      .split('\n')
      .filter((l) => l.includes('qrelay') && !/Unit qrelay\.service not found|Failed to prepare filename/.test(l));
    assert.deepEqual(problems, [], r.stderr);
    assert.equal(r.status, 0, r.stderr);
    // hardened beyond the original: exposure 2.5 or better
    const security = spawnSync('systemd-analyze', ['security', '--offline=true', join(dir, 'qrelay.service')], { encoding: 'utf8', timeout: 30_000 });
    const level = /Overall exposure level for qrelay\.service: (\d+\.\d)/.exec(security.stdout + security.stderr);
    assert.ok(level !== null, security.stdout + security.stderr);
    assert.ok(Number(level[1]) <= 2.5, `exposure ${level[1]}`);
    const service = readFileSync(join(dir, 'qrelay.service'), 'utf8');
    for (const line of ['Restart=on-failure', 'Requires=qrelay.socket', 'After=qrelay.socket']) assert.ok(service.split('\n').includes(line), line);
    removeDir(dir);
  });
});
