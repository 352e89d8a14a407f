// Prometheus metrics (docs/metrics.md): metrics_listen() on a Unix socket
// or loopback port, counters checked exactly after a known mix of mails,
// startup errors, and nothing at all without metrics_listen().
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MAIN, removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { downstreamServer, netstring, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';

const CONFIG = `
local dir = os.getenv('TEST_DIR')
metrics_listen(os.getenv('METRICS_ADDRESS'))
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local user = m.recipients[1]:match('^(.-)@')
  if user == 'discard' then return m:discard() end
  if user == 'reject' then return m:reject() end
  if user == 'fail' then error('deliberate failure') end
  if user == 'loop' then while true do end end
  if user == 'hold' then print('holding') sleep(1) return m:discard() end
  if user == 'refused' then return m:connect(dir .. '/nobody.sock') end
  return m:connect(dir .. '/down.sock')
end)
`;

function scrape(options: { socketPath: string } | { host: string; port: number }): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    get({ ...options, path: '/metrics' }, (response) => {
      let body = '';
      response.on('data', (d: Buffer) => (body += d.toString()));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/** The value of one sample line (`name{labels} value`), or undefined. */
function sample(body: string, series: string): number | undefined {
  const line = body.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics on a Unix socket after a known mix of mails', () => {
  let daemon: RunningDaemon;
  let down: DownstreamServer;
  let sock: string;
  before(async () => {
    const dir = tempDir();
    down = await downstreamServer(join(dir, 'down.sock'), () => netstring('Kok'));
    daemon = await startDaemon({ config: CONFIG, dir, env: { METRICS_ADDRESS: join(dir, 'metrics.sock'), QRELAY_LUA_TIME_LIMIT_MS: '300' } });
    sock = join(dir, 'qrelay.sock');
    const mail = (to: string): Buffer => qmqpRequest('Subject: x\r\n\r\nHi\r\n', 'alice@example.com', [`${to}@example.org`]);
    for (const to of ['discard', 'discard', 'reject', 'fail', 'loop', 'relay', 'relay', 'relay', 'refused']) await send(sock, mail(to));
  });
  after(async () => {
    await daemon.stop();
    await down.close();
    removeDir(daemon.dir);
  });

  it('counts mails by listener, action and answer class, exactly', async () => {
    const { status, type, body } = await scrape({ socketPath: join(daemon.dir, 'metrics.sock') });
    assert.equal(status, 200);
    assert.match(type, /^text\/plain; version=0\.0\.4/);
    const mails = (action: string, answer: string): number | undefined => sample(body, `qrelay_mails_total{listener="${sock}",action="${action}",answer="${answer}"}`);
    assert.equal(mails('discard', 'K'), 2);
    assert.equal(mails('reject', 'D'), 1);
    assert.equal(mails('script-failed', 'Z'), 2);
    assert.equal(mails('connect', 'K'), 3);
    assert.equal(mails('connect', 'Z'), 1);
    const total = body.split('\n').filter((l) => l.startsWith('qrelay_mails_total{')).reduce((n, l) => n + Number(l.split(' ')[1]), 0);
    assert.equal(total, 9);
    assert.equal(sample(body, 'qrelay_mail_duration_seconds_count{action="connect"}'), 4);
    assert.equal(sample(body, 'qrelay_mail_duration_seconds_count{action="discard"}'), 2);
    assert.equal(sample(body, 'qrelay_mail_duration_seconds_bucket{le="+Inf",action="connect"}'), 4);
    assert.equal(sample(body, 'qrelay_lua_handler_errors_total'), 2);
    assert.equal(sample(body, 'qrelay_lua_time_limit_stops_total'), 1);
    assert.equal(sample(body, 'qrelay_pond_send_errors_total'), 0);
    assert.equal(sample(body, 'qrelay_lua_memory_limit_stops_total'), 0);
    assert.equal(sample(body, 'qrelay_server_failures'), undefined, 'a single-address connect has no backoff');
    assert.equal(sample(body, 'qrelay_mails_in_flight'), 0);
    assert.equal(sample(body, 'qrelay_connections_in_flight'), 0);
    assert.equal(sample(body, 'qrelay_child_processes'), 0);
    assert.ok((sample(body, 'qrelay_process_cpu_user_seconds_total') ?? -1) > 0, 'process metrics');
    assert.ok((sample(body, 'qrelay_process_resident_memory_bytes') ?? -1) > 0, 'process metrics');
  });

  it('shows mails and connections in flight', async () => {
    const pending = send(sock, qmqpRequest('x', 'alice@example.com', ['hold@example.org']));
    await waitFor(() => daemon.stdout().includes('holding'), 5_000, 'the handler');
    const { body } = await scrape({ socketPath: join(daemon.dir, 'metrics.sock') });
    assert.equal(sample(body, 'qrelay_mails_in_flight'), 1);
    assert.equal(sample(body, 'qrelay_connections_in_flight'), 1);
    assert.equal(await pending, '10:Kdiscarded,');
  });

  it('answers 404 elsewhere and leaves no socket file after a clean exit', async () => {
    const status = await new Promise<number>((resolve, reject) =>
      get({ socketPath: join(daemon.dir, 'metrics.sock'), path: '/' }, (r) => {
        r.resume();
        resolve(r.statusCode ?? 0);
      }).on('error', reject),
    );
    assert.equal(status, 404);
    assert.equal(await daemon.stop(), 0);
    assert.equal(existsSync(join(daemon.dir, 'metrics.sock')), false);
  });
});

describe('metrics_listen', () => {
  it('serves on a loopback host:port', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const daemon = await startDaemon({ config: CONFIG, env: { METRICS_ADDRESS: `127.0.0.1:${port}` } });
    try {
      await send(join(daemon.dir, 'qrelay.sock'), qmqpRequest('x', 'a@b.c', ['discard@example.org']));
      const { body } = await scrape({ host: '127.0.0.1', port });
      assert.equal(sample(body, `qrelay_mails_total{listener="${join(daemon.dir, 'qrelay.sock')}",action="discard",answer="K"}`), 1);
      await daemon.waitForStderr(new RegExp(`^metrics: listen=127\\.0\\.0\\.1:${port} path=/metrics$`, 'm'));
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });

  it('refuses addresses that are not loopback, bad ports and a second call, with file and line', () => {
    const dir = tempDir();
    const path = join(dir, 'config.lua');
    for (const [call, expected] of [
      ["metrics_listen('10.0.0.1:9100')", "'10.0.0.1' is not a loopback address"],
      ["metrics_listen('127.0.0.1:70000')", 'port 70000 is out of range'],
      ["metrics_listen('nonsense')", "'nonsense' is neither a socket path"],
      ["metrics_listen('/tmp/a.sock')\nmetrics_listen('/tmp/b.sock')", 'metrics_listen may be called only once'],
    ] as const) {
      writeFileSync(path, `${call}\nqmqp_listen('${dir}/q.sock', function(m) return m:discard() end)\n`);
      const r = spawnSync(process.execPath, [MAIN, '--config', path], { encoding: 'utf8', timeout: 20_000 });
      assert.equal(r.status, 1, call);
      assert.match(r.stderr, new RegExp(`^${path.replaceAll('.', '\\.')}:${call.split('\n').length}: .*${expected.replace(/[()]/g, '\\$&')}`), r.stderr);
    }
    removeDir(dir);
  });

  it('is startup-only: gone at runtime, like qmqp_listen', async () => {
    const daemon = await startDaemon({
      config: `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) print('metrics_listen', metrics_listen) return m:discard() end)`,
    });
    try {
      await send(join(daemon.dir, 'qrelay.sock'), qmqpRequest('x', 'a@b.c', ['d@e.f']));
      await waitFor(() => daemon.stdout().includes('metrics_listen\tnil'), 5_000, 'the print');
      assert.doesNotMatch(daemon.stderr(), /^metrics:/m);
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });
});

describe('metrics of failover and limits', () => {
  it('shows a server of a connect list in backoff, and a client over its uid limit', async () => {
    const dir = tempDir();
    const down = await downstreamServer(join(dir, 'down.sock'), () => netstring('Kok'));
    const config = `
local dir = os.getenv('TEST_DIR')
max_connections_per_uid = 1
metrics_listen(dir .. '/metrics.sock')
qmqp_listen(dir .. '/qrelay.sock', function(m)
  if m.recipients[1] == 'hold@example.org' then print('holding') sleep(1) return m:discard() end
  return m:connect(dir .. '/nobody.sock', dir .. '/down.sock')
end)
`;
    const daemon = await startDaemon({ config, dir });
    try {
      const sock = join(dir, 'qrelay.sock');
      assert.equal(await send(sock, qmqpRequest('x', 'alice@example.com', ['bob@example.org'])), '3:Kok,');
      const held = send(sock, qmqpRequest('x', 'alice@example.com', ['hold@example.org']));
      await waitFor(() => daemon.stdout().includes('holding'), 5_000, 'the handler');
      assert.equal(await send(sock, qmqpRequest('x', 'alice@example.com', ['bob@example.org'])), `${`Ztoo many connections from uid ${process.getuid!()}`.length}:Ztoo many connections from uid ${process.getuid!()},`);
      assert.equal(await held, '10:Kdiscarded,');
      const { body } = await scrape({ socketPath: join(dir, 'metrics.sock') });
      const nobody = join(dir, 'nobody.sock');
      assert.equal(sample(body, `qrelay_server_failures{server="${nobody}"}`), 1);
      const seconds = sample(body, `qrelay_server_backoff_seconds{server="${nobody}"}`) ?? -1;
      assert.ok(seconds > 0 && seconds <= 10, `backoff seconds ${seconds}`);
      assert.equal(sample(body, `qrelay_server_failures{server="${join(dir, 'down.sock')}"}`), undefined, 'the server that answered is not in backoff');
      assert.equal(sample(body, 'qrelay_connection_limit_hits_total{limit="uid"}'), 1);
      assert.equal(sample(body, 'qrelay_mails_total{listener="' + sock + '",action="connect",answer="K"}'), 1);
    } finally {
      await daemon.stop();
      await down.close();
      removeDir(dir);
    }
  });
});
