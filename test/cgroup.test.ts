// m.cgroup (docs/mail.md) against a real cgroup2 hierarchy: the
// test mounts its own cgroup2 (as root), creates a cgroup three levels
// deep, sets user.* xattrs on it, and runs python3 clients inside it; the
// daemon's QRELAY_TEST_CGROUP_ROOT points at that mount.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, mkdirSync, mkdtempSync, openSync, readdirSync, readlinkSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import koffi from 'koffi';
import { closeFd, openDirectoryBeneath, SystemError } from '../src/native/linux.js';
import { CgroupLookupError, parseCgroupFile, processCgroupPath } from '../src/native/process-cgroup.js';
import { xattrName } from '../src/lua/libs/cgroup.js';
import { removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { downstreamServer, netstring, qmqpRequest, type DownstreamServer } from './helpers/qmqp.js';

const MESSAGE = 'Subject: cgroup\r\n\r\nHi\r\n';

/**
 * A QMQP client in python3: optionally moves itself into a cgroup (writes
 * its pid to PROCS), connects, sends the request; in `fork-exit` mode the
 * connecting process exits at once and a forked child keeps the socket and
 * reads the answer.  Prints the answer as hex.
 */
const CLIENT_PY = `
import os, socket, sys
path, procs, request, mode = sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]), sys.argv[4]
if procs:
    with open(procs, 'w') as f:
        f.write(str(os.getpid()))
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(20)
s.connect(path)
s.sendall(request)
if mode == 'fork-exit' and os.fork() != 0:
    os._exit(0)
data = b''
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
sys.stdout.write(data.hex() + '\\n')
sys.stdout.flush()
`;

function runClient(socketPath: string, procs: string, request: Buffer, mode: 'normal' | 'fork-exit' = 'normal'): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('python3', ['-c', CLIENT_PY, socketPath, procs, request.toString('hex'), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    // 'close': every holder of the pipes is gone (the forked child included)
    child.on('close', () => {
      clearTimeout(timer);
      if (err !== '') reject(new Error(`client failed: ${err}`));
      else resolve(Buffer.from(out.trim(), 'hex').toString('latin1'));
    });
  });
}

/** The inserted `X-…` header lines of a relayed request, by name. */
function relayedHeaders(request: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  for (const match of request.toString('latin1').matchAll(/(X-[A-Za-z0-9-]+): ([^\r]*)\r\n/g)) headers.set(match[1]!, match[2]!);
  return headers;
}

const CONFIG = `
local dir = os.getenv('TEST_DIR')
local function hex(s)
  return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end))
end
local function show(v) if v == nil then return 'nil' end return v end
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local user = m.recipients[1]:match('^(.-)@')
  if user == 'probe' then
    local cg = m.cgroup
    local parent = cg.parent
    local grandparent = parent.parent
    m:insert_header('X-Same', tostring(rawequal(cg, m.cgroup) and rawequal(parent, cg.parent) and rawequal(cg.xattr, cg.xattr)))
    m:insert_header('X-Path', m.cgroup.path)
    m:insert_header('X-Parent', parent.path)
    m:insert_header('X-Grandparent', grandparent.path)
    m:insert_header('X-Top', tostring(grandparent.parent))
    m:insert_header('X-Tag', show(cg.xattr.tag))
    m:insert_header('X-Full-Name', show(cg.xattr['user.tag']))
    m:insert_header('X-Missing', show(cg.xattr.missing))
    m:insert_header('X-Binary', hex(cg.xattr.binary))
    m:insert_header('X-Sizes', #cg.xattr.max .. ' ' .. show(cg.xattr.toolarge))
    m:insert_header('X-Parent-Tag', show(parent.xattr.tag) .. ' ' .. show(grandparent.xattr.tag))
    m:insert_header('X-Unknown', show(cg.unknown))
    return m:connect(dir .. '/down.sock')
  end
  if user == 'reread' then
    local x = m.cgroup.xattr
    local before = show(x.counter)
    print('reread: first value read')
    -- the test changes the attribute now; a cached value would never change
    for _ = 1, 200 do
      if show(x.counter) ~= before then break end
      sleep(0.05)
    end
    m:insert_header('X-Counter', before .. ' ' .. show(x.counter))
    return m:connect(dir .. '/down.sock')
  end
  if user == 'root' then
    local cg = m.cgroup
    local ok, err = pcall(function() return cg.xattr end)
    m:insert_header('X-Path', cg.path)
    m:insert_header('X-Parent', tostring(cg.parent))
    m:insert_header('X-Error', tostring(ok) .. ' ' .. err)
    return m:connect(dir .. '/down.sock')
  end
  if user == 'late' then
    sleep(0.5) -- the connecting process exits meanwhile
    local ok, err = pcall(function() return m.cgroup end)
    print('late: ' .. tostring(ok) .. ' ' .. tostring(err))
    return m:discard()
  end
  if user == 'keep' then
    kept_cgroup, kept_xattr, kept_parent = m.cgroup, m.cgroup.xattr, m.cgroup.parent
    return m:discard()
  end
  if user == 'stale' then
    local results = {}
    for _, f in ipairs({
      function() return kept_cgroup.path end,
      function() return kept_parent.path end,
      function() return kept_xattr.tag end,
    }) do
      local ok, err = pcall(f)
      results[#results + 1] = tostring(ok) .. ' ' .. tostring(err)
    end
    print('stale: ' .. table.concat(results, ' | '))
    return m:discard()
  end
  return m:reject()
end)
`;

/** Runs `argv` and throws with its output when it fails. */
function run(argv: string[]): void {
  const result = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`${argv.join(' ')} failed: ${result.stderr || result.error?.message}`);
}

function setXattr(path: string, name: string, valueHex: string): void {
  run(['python3', '-c', 'import os, sys; os.setxattr(sys.argv[1], sys.argv[2], bytes.fromhex(sys.argv[3]))', path, name, valueHex]);
}

describe('m.cgroup in a real cgroup2 hierarchy', () => {
  let mount: string;
  let mounted = false;
  let top: string;
  let leaf: string;
  let dir: string;
  let daemon: RunningDaemon;
  let down: DownstreamServer;
  let sock: string;
  const topName = `qrelay-test-${randomBytes(6).toString('hex')}`;

  before(async () => {
    mount = mkdtempSync(join(tmpdir(), 'qrelay-cgroup2-'));
    run(['mount', '-t', 'cgroup2', 'none', mount]);
    mounted = true;
    top = join(mount, topName);
    leaf = join(top, 'a', 'b');
    mkdirSync(leaf, { recursive: true });
    setXattr(leaf, 'user.tag', Buffer.from('leaf-tag').toString('hex'));
    setXattr(leaf, 'user.binary', '00ff0141');
    setXattr(leaf, 'user.max', 'aa'.repeat(4096));
    setXattr(leaf, 'user.toolarge', 'bb'.repeat(4097));
    setXattr(join(top, 'a'), 'user.tag', Buffer.from('parent-tag').toString('hex'));
    dir = tempDir('qrelay-cgroup-');
    down = await downstreamServer(join(dir, 'down.sock'), () => netstring('Kok'));
    daemon = await startDaemon({ config: CONFIG, dir, env: { QRELAY_TEST_CGROUP_ROOT: mount } });
    sock = join(dir, 'qrelay.sock');
  });

  after(async () => {
    await daemon?.stop();
    await down?.close();
    if (dir) removeDir(dir);
    if (mounted) {
      // children first; the clients have exited, so the cgroups are empty
      for (const d of [leaf, join(top, 'a'), top]) {
        try {
          rmdirSync(d);
        } catch {
          // not created
        }
      }
      run(['umount', mount]);
    }
    if (mount) rmdirSync(mount);
  });

  async function probe(user: string, procs: string): Promise<Map<string, string>> {
    const before = down.requests.length;
    const answer = await runClient(sock, procs, qmqpRequest(MESSAGE, 'sender@example.com', [`${user}@example.org`]));
    assert.equal(answer, '3:Kok,', daemon.stderr());
    assert.equal(down.requests.length, before + 1);
    return relayedHeaders(down.requests[before]!);
  }

  it('path, two levels of parent, cached objects, xattrs present, missing, binary and size limits', async () => {
    const h = await probe('probe', join(leaf, 'cgroup.procs'));
    assert.equal(h.get('X-Same'), 'true');
    assert.equal(h.get('X-Path'), `/${topName}/a/b`);
    assert.equal(h.get('X-Parent'), `/${topName}/a`);
    assert.equal(h.get('X-Grandparent'), `/${topName}`);
    assert.equal(h.get('X-Top'), 'nil'); // `/name` has no parent
    assert.equal(h.get('X-Tag'), 'leaf-tag');
    assert.equal(h.get('X-Full-Name'), 'leaf-tag');
    assert.equal(h.get('X-Missing'), 'nil');
    assert.equal(h.get('X-Binary'), '00ff0141');
    assert.equal(h.get('X-Sizes'), '4096 nil');
    assert.equal(h.get('X-Parent-Tag'), 'parent-tag nil');
    assert.equal(h.get('X-Unknown'), 'nil');
  });

  it('xattr values are re-read on every access', async () => {
    setXattr(leaf, 'user.counter', Buffer.from('one').toString('hex'));
    const result = probe('reread', join(leaf, 'cgroup.procs'));
    await waitFor(() => daemon.stdout().includes('reread: first value read'), 10_000, 'the first read');
    setXattr(leaf, 'user.counter', Buffer.from('two').toString('hex'));
    assert.equal((await result).get('X-Counter'), 'one two');
  });

  it('a client in the hierarchy root: path `/`, no parent, xattr fails with `Failed to open ""`', async () => {
    const h = await probe('root', '');
    assert.equal(h.get('X-Path'), '/');
    assert.equal(h.get('X-Parent'), 'nil');
    assert.equal(h.get('X-Error'), 'false Failed to open "": No such file or directory');
  });

  it('a client that exited before the handler read m.cgroup: the pcall sees the error', async () => {
    const answer = await runClient(sock, join(leaf, 'cgroup.procs'), qmqpRequest(MESSAGE, 'sender@example.com', ['late@example.org']), 'fork-exit');
    assert.equal(answer, '10:Kdiscarded,');
    await waitFor(() => daemon.stdout().includes('late: '), 5_000, 'the handler output');
    assert.match(daemon.stdout(), /^late: false Client process has already exited$/m);
  });

  it('objects kept past their mail are stale: cgroup, parent and xattr table', async () => {
    const procs = join(leaf, 'cgroup.procs');
    assert.equal(await runClient(sock, procs, qmqpRequest(MESSAGE, 'sender@example.com', ['keep@example.org'])), '10:Kdiscarded,');
    assert.equal(await runClient(sock, procs, qmqpRequest(MESSAGE, 'sender@example.com', ['stale@example.org'])), '10:Kdiscarded,');
    await waitFor(() => daemon.stdout().includes('stale: '), 5_000, 'the handler output');
    const line = /^stale: (.*)$/m.exec(daemon.stdout())![1]!;
    const parts = line.split(' | ');
    assert.equal(parts.length, 3);
    for (const part of parts) assert.match(part, /^false \S+:\d+: Stale object$/);
  });

  it('closes what the mails opened: no pidfd and no cgroup directory stays open', async () => {
    const fdDir = `/proc/${daemon.child.pid}/fd`;
    const open = readdirSync(fdDir).map((fd) => {
      try {
        return readlinkSync(join(fdDir, fd));
      } catch {
        return '';
      }
    });
    assert.equal(open.filter((target) => target.includes('pidfd')).length, 0, open.join(' '));
    // only the root itself, kept open for the daemon's lifetime
    assert.deepEqual(open.filter((target) => target.startsWith(mount)), [mount]);
  });
});

describe('cgroup lookup pieces', () => {
  it('parses the first cgroup2 line with a non-empty path', () => {
    assert.equal(parseCgroupFile(Buffer.from('4:memory:/x\n0::/user.slice/s.scope\n')), '/user.slice/s.scope');
    assert.equal(parseCgroupFile(Buffer.from('0::\n1:name=systemd:/y\n12::/second\n0::/third\n')), '/second');
    assert.equal(parseCgroupFile(Buffer.from('4:memory:/x\n1:name=systemd:/y\n')), undefined);
    assert.equal(parseCgroupFile(Buffer.from('0::/\n')), '/');
  });

  it('xattr names: short names without a dot are user.*, others are used as is', () => {
    assert.equal(xattrName('tag').toString(), 'user.tag');
    assert.equal(xattrName('trusted.foo').toString(), 'trusted.foo');
    assert.equal(xattrName('x'.repeat(1023)).toString(), 'user.' + 'x'.repeat(1023));
    assert.equal(xattrName('x'.repeat(1024)).toString(), 'x'.repeat(1024));
  });

  it('a pidfd pins the process: a different pid is `PID mismatch`, an exited one `has already exited`', async () => {
    const libc = koffi.load('libc.so.6');
    const syscall = libc.func('long syscall(long, ...)');
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    const pidfd = Number(syscall(434 /* pidfd_open */, 'int', child.pid!, 'unsigned int', 0));
    assert.ok(pidfd >= 0, `pidfd_open failed: errno ${koffi.errno()}`);
    try {
      assert.equal(processCgroupPath(child.pid!, pidfd), parseCgroupFile(Buffer.from(spawnSync('cat', [`/proc/${child.pid}/cgroup`]).stdout)));
      assert.throws(() => processCgroupPath(process.pid, pidfd), (e: unknown) => e instanceof CgroupLookupError && e.message === 'PID mismatch');
      child.kill('SIGKILL');
      await exited;
      await waitFor(() => {
        try {
          processCgroupPath(child.pid!, pidfd);
          return false;
        } catch (e) {
          return (e as Error).message === 'Client process has already exited';
        }
      }, 5_000, 'the pidfd to report the exit');
    } finally {
      child.kill('SIGKILL');
      closeFd(pidfd);
    }
  });

  it('without a pidfd a vanished pid fails to open /proc/PID/cgroup', () => {
    assert.throws(
      () => processCgroupPath(0x3ffffff, undefined),
      (e: unknown) => e instanceof CgroupLookupError && e.message === 'Failed to open "/proc/67108863/cgroup": No such file or directory',
    );
  });

  it('directories are opened beneath the root only: no `..`, no absolute paths, no symlinks out', () => {
    const root = tempDir('qrelay-beneath-');
    try {
      mkdirSync(join(root, 'a', 'b'), { recursive: true });
      symlinkSync('/etc', join(root, 'a', 'out'));
      symlinkSync('../..', join(root, 'a', 'up'));
      symlinkSync('b', join(root, 'a', 'in'));
      writeFileSync(join(root, 'file'), '');
      const rootFd = openSync(root, constants.O_RDONLY | constants.O_DIRECTORY);
      try {
        const ok = (p: string): void => closeFd(openDirectoryBeneath(rootFd, Buffer.from(p), `Failed to open "${p}"`));
        const fails = (p: string, text: string): void =>
          assert.throws(() => ok(p), (e: unknown) => e instanceof SystemError && e.message === `Failed to open "${p}": ${text}`);
        ok('a/b');
        ok('a/in');
        ok('a/b/..');
        fails('', 'No such file or directory');
        fails('..', 'Invalid cross-device link');
        fails('a/../..', 'Invalid cross-device link');
        fails('/etc', 'Invalid cross-device link');
        fails('a/out', 'Invalid cross-device link');
        fails('a/up', 'Invalid cross-device link');
        fails('file', 'Not a directory');
        fails('missing', 'No such file or directory');
      } finally {
        closeSync(rootFd);
      }
    } finally {
      removeDir(root);
    }
  });
});
