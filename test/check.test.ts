// `qrelay check` (docs/command-line.md): the configuration loaded as the
// daemon loads it, a dry run of the handler, and proof that nothing was
// bound, connected to, executed or logged.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { createSocket } from 'node:dgram';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAIN, ROOT, removeDir, tempDir } from './helpers/daemon.js';
import { unixReceiver } from './helpers/datagram-receiver.js';

interface Result {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function check(args: readonly string[], input = '', env: NodeJS.ProcessEnv = {}): Result {
  const r = spawnSync(process.execPath, [MAIN, 'check', ...args], { input, encoding: 'utf8', env: { ...process.env, ...env }, timeout: 120_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** check() without blocking this process's event loop (for servers in this process). */
function checkAsync(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  const child = spawn(process.execPath, [MAIN, 'check', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return new Promise((resolve) => child.on('close', (status) => resolve({ status, stdout, stderr })));
}

describe('qrelay check: the configuration', () => {
  for (const name of readdirSync(join(ROOT, 'examples')).filter((f) => f.endsWith('.lua'))) {
    it(`passes examples/${name}`, async () => {
      // libraries.lua connects its datagram sockets at startup, as the daemon would
      const dir = tempDir();
      const control = unixReceiver(join(dir, 'control.sock'));
      const audit = unixReceiver(join(dir, 'audit.sock'));
      try {
        const r = await checkAsync(['--config', join(ROOT, 'examples', name)], { QRELAY_AUDIT_LOG: audit.logServer, QRELAY_BENG_CONTROL: control.logServer });
        assert.equal(r.status, 0, r.stderr);
        assert.match(r.stdout, /^configuration OK: .*\nlistener 1: /);
        assert.equal(audit.datagrams.length + control.datagrams.length, 0);
      } finally {
        await control.close();
        await audit.close();
        removeDir(dir);
      }
    });
  }

  it('fails a broken config with the file and line, exit 1', () => {
    const dir = tempDir();
    const path = join(dir, 'config.lua');
    writeFileSync(path, "\nqmqp_listen('/tmp/x.sock', function(m)\n  return m:discard(\nend)\n");
    const r = check(['--config', path]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, new RegExp(`^${path.replaceAll('.', '\\.')}:4: `));
    removeDir(dir);
  });

  it('reports the same startup errors as the daemon', () => {
    const dir = tempDir();
    const path = join(dir, 'config.lua');
    for (const [config, expected] of [
      ['x = 1', /^No QMQP listeners configured\n$/],
      ["max_size = 1023\nqmqp_listen('/tmp/x', function() end)", /config\.lua:2: `max_size` is too small/],
      ["log_server = true\nqmqp_listen('/tmp/x', function() end)", /log_server must be/],
    ] as const) {
      writeFileSync(path, config);
      const r = check(['--config', path]);
      assert.equal(r.status, 1, config);
      assert.match(r.stderr, expected);
    }
    const missing = check(['--config', join(dir, 'missing.lua')]);
    assert.equal(missing.status, 1);
    assert.equal(missing.stderr, `cannot open ${join(dir, 'missing.lua')}: No such file or directory\n`);
    removeDir(dir);
  });

  it('answers usage errors with exit 2, naming the argument', () => {
    for (const [args, named] of [
      [['--bogus'], "'--bogus'"],
      [['--uid', '33'], "'--uid'"],
      [['--rcpt', 'a@b', '--uid', 'x'], "'--uid x'"],
      [['--rcpt', 'not an address'], "'--rcpt not an address'"],
    ] as const) {
      const r = check(args);
      assert.equal(r.status, 2, args.join(' '));
      assert.ok(r.stderr.includes(named), r.stderr);
    }
  });
});

describe('qrelay check: a dry run of the policy', () => {
  let dir: string;
  let config: string;
  let connections = 0;
  let datagrams = 0;
  const server = createServer((s) => {
    connections++;
    s.destroy();
  });
  const pond = createSocket('udp4');
  let tcpPort = 0;
  let udpPort = 0;

  before(async () => {
    dir = tempDir();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    tcpPort = (server.address() as { port: number }).port;
    pond.on('message', () => datagrams++);
    await new Promise<void>((r) => pond.bind(0, '127.0.0.1', r));
    udpPort = pond.address().port;
    config = join(dir, 'config.lua');
    writeFileSync(
      config,
      `
local dir = '${dir}'
log_server = '127.0.0.1:${udpPort}'
qmqp_listen(dir .. '/qrelay.sock', function(m)
  print('handler ran')
  if m.uid == 33 then
    m.account = 'web'
    m:insert_header('X-Web-Uid', m.uid)
    sleep(10)
    return m:exec_raw(dir .. '/create-file.sh', '-f', m.sender, '--', unpack(m.recipients), { env = { A = 'b c' }, timeout = 5 })
  end
  if m.sender == 'spammer@example.com' then error('no spam please') end
  if #m.recipients > 1 then
    m.sender = 'bounces@example.net'
    local s, err = socket:connect('127.0.0.1:${tcpPort}')
    print('socket.connect', s, err)
    return m:connect('127.0.0.1:${tcpPort}')
  end
  return m:discard()
end)
`,
    );
    writeFileSync(join(dir, 'create-file.sh'), `#!/bin/sh\ntouch '${dir}/created'\n`, { mode: 0o755 });
  });
  after(async () => {
    server.close();
    pond.close();
    removeDir(dir);
  });

  it('lists the listeners and the log server without binding', () => {
    const r = check(['--config', config]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, `configuration OK: ${config}\nlistener 1: ${dir}/qrelay.sock (handler 1, max_size 16777216)\nlog_server: 127.0.0.1:${udpPort}\n`);
    assert.equal(existsSync(join(dir, 'qrelay.sock')), false);
  });

  it('branch on uid: exec_raw with argv, env, timeout, headers and account; sleep not performed', () => {
    const r = check(['--config', config, '--sender', 'alice@example.com', '--rcpt', 'bob@example.org', '--uid', '33', '--gid', '33', '--pid', '4242'], 'Subject: hi\n\nHello\n');
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.split('\n');
    assert.ok(lines.includes('mail: listener 1, sender <alice@example.com>, 1 recipient(s) <bob@example.org>, pid 4242 uid 33 gid 33, 19 bytes'), r.stdout);
    assert.ok(lines.includes(`action: exec_raw ${dir}/create-file.sh -f alice@example.com -- bob@example.org`), r.stdout);
    assert.ok(lines.includes("env: 'A=b c'"), r.stdout);
    assert.ok(lines.includes('timeout: 5 s'), r.stdout);
    assert.ok(lines.includes('sender: <alice@example.com> (unchanged)'), r.stdout);
    assert.ok(lines.includes('insert header: X-Web-Uid: 33'), r.stdout);
    assert.ok(lines.includes('account: web'), r.stdout);
    assert.ok(lines.includes('not performed: sleep'), r.stdout);
  });

  it('branch on sender: the script error with file and line, exit 1', () => {
    const r = check(['--config', config, '--sender', 'spammer@example.com', '--rcpt', 'bob@example.org']);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /\naction: none \(answer Zscript failed\)\n/);
    assert.equal(r.stderr, `script error: ${config}:12: no spam please\n`);
  });

  it('branch on recipients: connect with the rewritten sender; the socket is not opened', () => {
    const r = check(['--config', config, '--sender', 'alice@example.com', '--rcpt', 'bob@example.org', '--rcpt', 'carol@example.org']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`\\naction: connect 127\\.0\\.0\\.1:${tcpPort}\\n`));
    assert.match(r.stdout, /\nsender: <alice@example\.com> rewritten to <bounces@example\.net>\n/);
    assert.match(r.stdout, /\nsocket\.connect\tnil\tnot performed: qrelay check is a dry run\n/);
    assert.match(r.stdout, /\nnot performed: socket\.connect\n/);
  });

  it('the default branch: discard', () => {
    const r = check(['--config', config, '--rcpt', 'bob@example.org']);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /\naction: discard \(answer Kdiscarded\)\n/);
  });

  it('bound, connected to, executed and logged nothing', async () => {
    // every check above has run; the datagram socket and the server would have seen traffic by now
    await new Promise((r) => setImmediate(r));
    assert.equal(connections, 0);
    assert.equal(datagrams, 0);
    assert.equal(existsSync(join(dir, 'created')), false);
    assert.equal(existsSync(join(dir, 'qrelay.sock')), false);
  });
});

describe('qrelay check: code the run-time limit cannot stop', () => {
  /** `qrelay check` run by its #! line, as the command is, with a run-time limit of 1 s (stopped after 2). */
  function checkStuck(config: string, args: readonly string[]): Result {
    const dir = tempDir();
    try {
      writeFileSync(join(dir, 'config.lua'), config);
      const r = spawnSync(MAIN, ['check', '--config', join(dir, 'config.lua'), ...args], { input: '', encoding: 'utf8', env: { ...process.env, QRELAY_LUA_TIME_LIMIT_MS: '1000' }, timeout: 60_000 });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    } finally {
      removeDir(dir);
    }
  }
  const LOOPING_GC = 'setmetatable({}, { __gc = function() while true do end end })\ncollectgarbage()\n';

  it('a config that holds the process while it loads: stopped, the error names the config, exit 1', () => {
    const r = checkStuck(`${LOOPING_GC}qmqp_listen('/nonexistent/q.sock', function(m) return m:discard() end)\n`, []);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /config\.lua: Lua code held the process for \d+\.\d s while the config was loaded and was stopped \(a __gc metamethod or a library function such as string\.find, which the run-time limit cannot interrupt\)\n/);
  });

  it('a handler that holds the process: stopped, a script error, exit 1', () => {
    const r = checkStuck(`qmqp_listen('/nonexistent/q.sock', function(m)\n${LOOPING_GC}return m:discard()\nend)\n`, ['--rcpt', 'b@example.org']);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^script error: Lua code was stopped after it held the process for \d+\.\d s \(a __gc metamethod/m);
  });
});
