// `--workers N`: N worker processes accepting on the listeners the primary
// bound, each with its own Lua state; SIGHUP reaches every worker, a dead
// worker is replaced, SIGTERM drains them all; `--workers 1` is the plain daemon.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { childrenOf } from './helpers/exec-children.js';
import { exchange, qmqpRequest, send } from './helpers/qmqp.js';

const CONFIG = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  if m.recipients[1] == 'slow@example.org' then
    print('handling slow mail')
    io.stdout:flush()
    sleep(1)
  end
  return m:discard()
end)
function reload() print('reloaded') io.stdout:flush() end
`;

const MAIL = qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@example.org', ['b@example.org']);
const liveChildren = (daemon: RunningDaemon): number[] =>
  childrenOf(daemon.child.pid!)
    .filter((c) => c.state !== 'Z')
    .map((c) => c.pid);

/** The CPUs a process may run on (its Cpus_allowed_list: `0-1`, `0,2-3`). */
function allowedCpus(pid: number, task = pid): number[] {
  const list = /^Cpus_allowed_list:\s*(\S+)$/m.exec(readFileSync(`/proc/${pid}/task/${task}/status`, 'latin1'))![1]!;
  return list.split(',').flatMap((range) => {
    const [first, last = first] = range.split('-').map(Number);
    return Array.from({ length: last! - first! + 1 }, (_, i) => first! + i);
  });
}

/** The CPUs every thread of `pid` may run on (the same for all of them). */
function threadCpus(pid: number): number[] {
  const perThread = readdirSync(`/proc/${pid}/task`).map((task) => allowedCpus(pid, Number(task)));
  for (const cpus of perThread) assert.deepEqual(cpus, perThread[0], `pid ${pid}: every thread on the same CPUs`);
  return perThread[0]!;
}

/** The daemon with `--workers N`, ready once every worker is; `command`: how it is run (default `node dist/main.js`). */
function daemonWith(workers: string, command?: readonly string[]): Promise<RunningDaemon> {
  const dir = tempDir();
  return startDaemon({
    config: CONFIG,
    dir,
    ...(command === undefined ? {} : { command }),
    args: ['--config', join(dir, 'config.lua'), '--workers', workers],
    readyPath: 'qrelay.sock',
    ...(workers === '1' ? {} : { ready: (_out: string, err: string) => err.includes(`${workers} workers ready`) }),
  });
}

describe('--workers', () => {
  it('serves mail from two worker processes, each with its own Lua state', async () => {
    const daemon = await daemonWith('2');
    try {
      assert.equal(liveChildren(daemon).length, 2);
      const answers = await Promise.all(Array.from({ length: 20 }, () => send(join(daemon.dir, 'qrelay.sock'), MAIL)));
      assert.deepEqual(answers, Array(20).fill('10:Kdiscarded,'));
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('runs the primary and every worker with the node options and environment of the command\'s first line (the young-generation cap, async-hook checks off, one malloc arena)', async () => {
    const words = readFileSync(MAIN, 'latin1').split('\n', 1)[0]!.split(' ');
    assert.deepEqual(words.slice(words.indexOf('node') + 1), ['--max-semi-space-size=4', '--no-force-async-hooks-checks']);
    assert.deepEqual(words.slice(2, words.indexOf('node')), ['MALLOC_ARENA_MAX=1']);
    // run as the `qrelay` command is: the file itself, by its #! line
    const daemon = await daemonWith('2', [MAIN]);
    try {
      for (const pid of [daemon.child.pid!, ...liveChildren(daemon)]) {
        const argv = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0');
        assert.ok(argv.includes('--max-semi-space-size=4'), `pid ${pid}: ${argv.join(' ')}`);
        assert.ok(argv.includes('--no-force-async-hooks-checks'), `pid ${pid}: ${argv.join(' ')}`);
        assert.ok(readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0').includes('MALLOC_ARENA_MAX=1'), `pid ${pid}: environment`);
      }
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('with as many workers as CPUs, runs each worker (every thread of it) on a CPU of its own, a replacement on the CPU of the worker it replaced', async () => {
    const cpus = allowedCpus(process.pid);
    const daemon = await daemonWith(String(cpus.length));
    try {
      // the primary keeps every CPU
      assert.deepEqual(allowedCpus(daemon.child.pid!), cpus);
      const pinned = (): number[][] => liveChildren(daemon).map((pid) => threadCpus(pid));
      const expected = cpus.length === 1 ? [cpus] : cpus.map((cpu) => [cpu]);
      assert.deepEqual(pinned().sort(), expected.sort());
      if (cpus.length > 1) assert.match(daemon.stderr(), new RegExp(`${cpus.length} workers ready cpus=${cpus.join(',')}`));
      const before = new Set(liveChildren(daemon));
      const [victim] = before;
      const victimCpus = threadCpus(victim!);
      process.kill(victim!, 'SIGKILL');
      await daemon.waitForStderr(new RegExp(`worker pid=${victim} exited`));
      await waitFor(() => liveChildren(daemon).length === cpus.length && !liveChildren(daemon).includes(victim!), 10_000, 'a new worker');
      assert.deepEqual(pinned().sort(), expected.sort());
      assert.deepEqual(threadCpus(liveChildren(daemon).find((pid) => !before.has(pid))!), victimCpus);
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('runs reload() in every worker on SIGHUP', async () => {
    const daemon = await daemonWith('2');
    try {
      daemon.child.kill('SIGHUP');
      await waitFor(() => daemon.stdout().split('reloaded').length - 1 === 2, 10_000, 'two reloads');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('replaces a worker that dies, and logs it', async () => {
    const daemon = await daemonWith('2');
    try {
      const [victim] = liveChildren(daemon);
      process.kill(victim!, 'SIGKILL');
      await daemon.waitForStderr(new RegExp(`worker pid=${victim} exited \\(SIGKILL\\); starting a new one`));
      await waitFor(() => liveChildren(daemon).length === 2 && !liveChildren(daemon).includes(victim!), 10_000, 'a new worker');
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('drains every worker on SIGTERM: a mail in flight is answered, then all exit 0', async () => {
    const daemon = await daemonWith('2');
    const workers = liveChildren(daemon);
    try {
      const slow = exchange(join(daemon.dir, 'qrelay.sock'), qmqpRequest('x', 'a@example.org', ['slow@example.org']));
      await waitFor(() => daemon.stdout().includes('handling slow mail'), 10_000, 'the slow mail in a worker');
      const status = daemon.stop();
      assert.equal((await slow).response.toString(), '10:Kdiscarded,');
      assert.equal(await status, 0);
      for (const pid of workers) assert.throws(() => process.kill(pid, 0), 'worker gone');
    } finally {
      removeDir(daemon.dir);
    }
  });

  it('with 1 (the default) runs no worker processes', async () => {
    const daemon = await daemonWith('1');
    try {
      assert.deepEqual(liveChildren(daemon), []);
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), MAIL), '10:Kdiscarded,');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('refuses a count that is not a positive number or auto', () => {
    for (const value of ['0', '-1', 'two', '']) {
      const r = spawnSync(process.execPath, [MAIN, '--workers', value], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, value);
      assert.match(r.stderr, /^qrelay: Option '--workers'[^]*\nUsage: qrelay \[--config PATH\] \[--workers N\|auto\]\n$/);
    }
  });
});

// each worker says which process served a mail: its pid, read once per Lua state
const METRICS_CONFIG = `local stat = io.open('/proc/self/stat')
local pid = stat:read('n')
stat:close()
metrics_listen(os.getenv('TEST_DIR') .. '/metrics.sock')
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  print('served by ' .. pid)
  io.stdout:flush()
  return m:discard()
end)
`;

function scrape(socketPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    get({ socketPath, path: '/metrics' }, (response) => {
      let body = '';
      response.on('data', (d: Buffer) => (body += d.toString()));
      response.on('end', () => (response.statusCode === 200 ? resolve(body) : reject(new Error(`status ${response.statusCode}: ${body}`))));
    }).on('error', reject);
  });
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('--workers with metrics_listen', () => {
  it("serves the sum of the workers' metrics from the primary, and counts a replaced worker", async () => {
    const dir = tempDir();
    const daemon = await startDaemon({
      config: METRICS_CONFIG,
      dir,
      args: ['--config', join(dir, 'config.lua'), '--workers', '2'],
      ready: (_out, err) => err.includes('2 workers ready'),
    });
    try {
      const sock = join(dir, 'qrelay.sock');
      const metrics = join(dir, 'metrics.sock');
      const servedBy = (): Map<number, number> => {
        const counts = new Map<number, number>();
        for (const m of daemon.stdout().matchAll(/^served by (\d+)$/gm)) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1);
        return counts;
      };
      // until both workers have served mail (the kernel chooses which accepts)
      let sent = 0;
      for (let batch = 0; batch < 50 && servedBy().size < 2; batch++) {
        const answers = await Promise.all(Array.from({ length: 10 }, () => send(sock, MAIL)));
        assert.deepEqual(answers, Array(10).fill('10:Kdiscarded,'));
        sent += 10;
        await waitFor(() => [...servedBy().values()].reduce((a, b) => a + b, 0) === sent, 5_000, 'the lines of the mails');
      }
      assert.equal(servedBy().size, 2, 'both workers served mail');
      assert.match(daemon.stderr(), new RegExp(`^metrics: listen=${metrics.replace(/[.]/g, '\\.')} path=/metrics workers=2$`, 'm'));
      const series = `qrelay_mails_total{listener="${sock}",action="discard",answer="K"}`;
      let body = await scrape(metrics);
      assert.equal(sample(body, series), sent, 'the mails of both workers');
      assert.equal(sample(body, 'qrelay_workers'), 2);
      assert.equal(sample(body, 'qrelay_worker_restarts_total'), 0);
      assert.equal(sample(body, 'qrelay_connections_in_flight'), 0);
      assert.equal(sample(body, `qrelay_mail_duration_seconds_count{action="discard"}`), sent);

      // a replaced worker's counts are gone; the new one starts from 0
      const [victim] = liveChildren(daemon);
      const lost = servedBy().get(victim!) ?? 0;
      process.kill(victim!, 'SIGKILL');
      await daemon.waitForStderr(new RegExp(`worker pid=${victim} exited \\(SIGKILL\\); starting a new one`));
      await waitFor(() => liveChildren(daemon).length === 2 && !liveChildren(daemon).includes(victim!), 10_000, 'a new worker');
      await waitFor(() => daemon.stderr().split('listening: ').length - 1 === 3, 10_000, 'the new worker listening');
      body = await scrape(metrics);
      assert.equal(sample(body, series), sent - lost);
      assert.equal(sample(body, 'qrelay_worker_restarts_total'), 1);
      assert.equal(sample(body, 'qrelay_workers'), 2);
      assert.equal(await daemon.stop(), 0);
      assert.equal(existsSync(metrics), false, 'the socket file is removed at exit');
    } finally {
      await daemon.stop();
      removeDir(dir);
    }
  });

  it('refuses to start when the metrics address is taken, naming it', async () => {
    const dir = tempDir();
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    const daemon = await startDaemon({
      config: `metrics_listen('127.0.0.1:${port}')\nqmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)`,
      dir,
      args: ['--config', join(dir, 'config.lua'), '--workers', '2'],
      noWait: true,
    });
    try {
      assert.equal(await daemon.exited, 1);
      assert.match(daemon.stderr(), new RegExp(`^metrics_listen\\('127\\.0\\.0\\.1:${port}'\\): .*EADDRINUSE`, 'm'));
      assert.doesNotMatch(daemon.stderr(), /workers ready/);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
      removeDir(dir);
    }
  });
});
