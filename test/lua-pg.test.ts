// The `pg` library (docs/pg.md) end to end: the real daemon, a private
// PostgreSQL server on a Unix socket, and QMQP clients.  Each mail's
// sender picks a handler; handlers report through print() (stdout) and
// answer with discard (`Kdiscarded`) or reject (`Drejected`).
import assert from 'node:assert/strict';
import { connect, createServer } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type pg from 'pg';
import { removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';
import { startPostgres, type PostgresServer } from './helpers/postgres.js';
import { qmqpRequest, send } from './helpers/qmqp.js';
import { luaString } from './helpers/run-lua.js';

const DISCARDED = '10:Kdiscarded,';
const REJECTED = '9:Drejected,';

/** Queries whose error texts must read exactly as libpq (psql) prints them. */
const ERROR_QUERIES = [
  'SELECT * FROM nonexistent',
  'SELEC 1',
  "DO $$ BEGIN RAISE EXCEPTION 'boom' USING HINT = 'h', DETAIL = 'd'; END $$",
  'DO $$ BEGIN PERFORM * FROM nonexistent_in_plpgsql; END $$',
  'SELECT 1,\r\n  2,\n\tmissing_column',
  'SELECT 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20 + 21 + 22 FROM nonexistent_table_x',
  'SELECT missing_col, 1 + 2 + 3 + 4 + 5 + 6 + 7 + 8 + 9 + 10 + 11 + 12 + 13 + 14 + 15 + 16 + 17 + 18 + 19 + 20 + 21 + 22 + 23',
  "SELECT '日本語のテキスト' || 'ü' || missing_wide",
  'SELECT 1 AS fine; SELECT * FROM last_one_fails',
  'INSERT INTO recipients VALUES (\'bob@example.org\', \'dup\')',
];

const CONFIG = `
local conninfo = os.getenv('PG_CONNINFO')
local function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end
local function try(f, ...)
  local ok, err = pcall(f, ...)
  return ok and 'ok' or (tostring(err):gsub('^[^:]*:%d+: ', ''))
end
local function row_text(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  for i, k in ipairs(keys) do keys[i] = k .. '=' .. tostring(t[k] or t[tonumber(k)]) end
  return table.concat(keys, ',')
end

local db = pg:new(conninfo)
local queue_db = pg:new(conninfo)
local slow_db = pg:new(conninfo)
local cancel_db = pg:new(conninfo)
local restart_db = pg:new(conninfo)
local listen_db = pg:new(conninfo)
local lazy_db = pg:new(conninfo .. " application_name='qrelay lazy'")
local schema_db = pg:new(conninfo, 'other')
local uri_db = pg:new(os.getenv('PG_URI'))
local missing_db = pg:new('host=/nonexistent port=5999 dbname=x')
local garbled_db = pg:new('dbname')
-- a "server" that hangs up on every connection: each attempt fails
local refusing_db = pg:new('host=' .. os.getenv('REFUSING_DIR') .. ' dbname=x')
refusing_db:listen('never', function() end)

print('new errors', try(pg.new, pg), try(pg.new, pg, 'a', 'b', 'c'), try(pg.new, pg, {}))

local notify_runs = 0
listen_db:listen('qrelay_test', function(...)
  notify_runs = notify_runs + 1
  local run = notify_runs
  print('notify start', run, select('#', ...))
  sleep(0.3)
  print('notify end', run)
end)
listen_db:listen('qrelay_fail', function()
  local r = assert(db:execute('SELECT 7 AS v'))
  print('notify query', r:fetch().v)
  error('notify failure on purpose')
end)
print('listen errors', try(listen_db.listen, listen_db, 'qrelay_test', print), try(listen_db.listen, listen_db, 'x'),
  try(listen_db.listen, listen_db, 'x', 'not a function'), try(listen_db.listen, listen_db, 'x', print, 1))

local ERROR_QUERIES = { ${ERROR_QUERIES.map((q) => luaString(Buffer.from(q, 'utf8'))).join(', ')} }

local handlers = {}
function handlers.lookup(m)
  local result = assert(db:execute('SELECT verdict FROM recipients WHERE address = $1', { m.recipients[1] }))
  local row = result:fetch()
  if row and row.verdict == 'discard' then return m:discard() end
  return m:reject()
end
function handlers.params(m)
  local values = { nil, true, false, 42, 0.1, 1e16, 1e15, -2.5, "it's \\195\\188", 9007199254740993, 1/3, 2^53, '', -0.0001, 1e-5 }
  local columns = {}
  for i = 1, #values do columns[i] = '$' .. i .. '::text' end
  local row = assert(db:execute('SELECT ' .. table.concat(columns, ', '), values)):fetch({}, 'n')
  local texts = {}
  for i = 1, #values do texts[i] = row[i] == nil and 'NULL' or row[i] end
  print('params', #values, table.concat(texts, '|'))
  print('unsupported', db:execute('SELECT 1', { {} }))
  print('unsupported', db:execute('SELECT 1', { 'ok', print }))
  print('hole', row_text(assert(db:execute('SELECT $1::text IS NULL AS n, $2::text AS x', { nil, 'x' })):fetch()))
  print('argerrors', try(db.execute, db), try(db.execute, db, 'SELECT 1', nil), try(db.execute, db, 'SELECT 1', {}, 1),
    try(db.execute, db, {}), try(db.execute, {}, 'SELECT 1'), try(db.execute, db, 'SELECT 1', 'x'))
  return m:discard()
end
function handlers.sqlerror(m)
  for i, sql in ipairs(ERROR_QUERIES) do
    local r, message = db:execute(sql)
    print('sqlerror', i, tostring(r), hex(message))
  end
  local r, message = db:execute('SELECT $1::int', { 'abc' })
  print('paramerror', tostring(r), hex(message))
  print('after errors', assert(db:execute('SELECT 1 AS still')):fetch().still)
  return m:discard()
end
function handlers.fetch(m)
  local r = assert(db:execute([[SELECT 1 AS a, NULL AS b, 'x' AS c, true AS t, 1.5::float8 AS f, ARRAY[1,2] AS arr,
    '2024-01-02'::date AS d, 'first' AS dup, 'last' AS dup]]))
  print('fetch a', row_text(r:fetch()))
  r = assert(db:execute([[SELECT 1 AS a, NULL AS b, 'x' AS c]]))
  print('fetch n', row_text(r:fetch({}, 'n')))
  r = assert(db:execute('SELECT generate_series(1, 3) AS i'))
  local own = { keep = 'yes' }
  local first = r:fetch(own)
  print('fetch own', first == own, row_text(own))
  print('fetch mode', try(r.fetch, r, {}, 'x'), try(r.fetch, r, {}, {}), r:fetch(nil).i)
  print('fetch rest', r:fetch({}, 'a').i, select('#', r:fetch()), select('#', r:fetch({}, 'bogus')))
  r = assert(db:execute('SELECT 1 AS x; SELECT 2 AS y'))
  print('fetch last', row_text(r:fetch()))
  r = assert(db:execute('CREATE TEMP TABLE IF NOT EXISTS scratch (v text)'))
  print('fetch command', type(r), select('#', r:fetch()))
  r = assert(db:execute(''))
  print('fetch empty', select('#', r:fetch()))
  return m:discard()
end
function handlers.slow(m)
  assert(slow_db:execute('SELECT pg_sleep(1)'))
  return m:discard()
end
function handlers.queue1(m)
  assert(queue_db:execute('SELECT pg_sleep(0.5)'))
  print('queue done', 1)
  return m:discard()
end
function handlers.queue2(m)
  assert(queue_db:execute('SELECT 2'))
  print('queue done', 2)
  return m:discard()
end
function handlers.cancel(m)
  local values = { cancel_db:execute('SELECT pg_sleep(5)') }
  print('cancel resumed', #values)
  return m:discard()
end
function handlers.cancelnext(m)
  print('cancelnext', assert(cancel_db:execute('SELECT pg_backend_pid() AS pid')):fetch().pid)
  return m:discard()
end
function handlers.lazy(m)
  assert(lazy_db:execute('SELECT 1'))
  return m:discard()
end
function handlers.schema(m)
  print('schema', assert(schema_db:execute('SELECT v FROM things')):fetch().v, assert(db:execute('SELECT v FROM things')):fetch().v,
    assert(schema_db:execute('SHOW search_path')):fetch({}, 'n')[1])
  return m:discard()
end
function handlers.connfail(m)
  print('uri', assert(uri_db:execute('SELECT current_user AS u, current_database() AS d')):fetch({}, 'n')[1])
  local r, message = missing_db:execute('SELECT 1')
  print('missing', tostring(r), hex(message))
  r, message = garbled_db:execute('SELECT 1')
  print('garbled', tostring(r), hex(message))
  return m:discard()
end
function handlers.retry(m)
  local r, message = refusing_db:execute('SELECT 1')
  print('retry', tostring(r), hex(message))
  return m:discard()
end
function handlers.restart(m)
  local r, message = restart_db:execute('SELECT 1 AS one')
  if r then print('restart ok', r:fetch().one) else print('restart failed', hex(message)) end
  return m:discard()
end
function handlers.broken(m)
  print('broken', select('#', restart_db:execute('SELECT pg_sleep(3)')))
  return m:discard()
end

qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  return handlers[m.sender:match('^[^@]+')](m)
end)
`;

const hex = (s: string): string => Buffer.from(s, 'utf8').toString('hex');

describe('the pg library through the daemon', () => {
  let server: PostgresServer;
  let check: pg.Client;
  let daemon: RunningDaemon;
  let sock: string;
  // when the daemon connected to the hanging-up "server"
  const attempts: number[] = [];
  const refusingDir = tempDir('qrelay-refusing-');
  const refusing = createServer((socket) => {
    attempts.push(Date.now());
    // hang up once the startup packet is in, so the client sees the end of the stream
    socket.once('data', () => socket.destroy());
    socket.on('error', () => {});
  });

  before(async () => {
    await new Promise<void>((resolve) => refusing.listen(join(refusingDir, '.s.PGSQL.5432'), resolve));
    server = await startPostgres();
    check = await server.client();
    await check.query(`
      CREATE TABLE recipients (address text PRIMARY KEY, verdict text);
      INSERT INTO recipients VALUES ('bob@example.org', 'discard'), ('spam@example.org', 'reject');
      CREATE TABLE things (v text);
      INSERT INTO things VALUES ('in public');
      CREATE SCHEMA other;
      CREATE TABLE other.things (v text);
      INSERT INTO other.things VALUES ('in other');`);
    daemon = await startDaemon({
      config: CONFIG,
      env: { PG_CONNINFO: server.conninfo, PG_URI: `postgresql://postgres@${encodeURIComponent(server.dir)}/postgres`, REFUSING_DIR: refusingDir },
    });
    sock = join(daemon.dir, 'qrelay.sock');
  });
  after(async () => {
    if (daemon !== undefined) {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
    await new Promise((resolve) => refusing.close(resolve));
    removeDir(refusingDir);
  });

  const mail = (handler: string, recipients = ['someone@example.org']): Buffer => qmqpRequest('Subject: x\r\n\r\nbody\r\n', `${handler}@example.com`, recipients);
  const lines = (prefix: string): string[] => daemon.stdout().split('\n').filter((l) => l.startsWith(prefix + '\t'));
  async function printed(prefix: string, count = 1): Promise<string[]> {
    await waitFor(() => lines(prefix).length >= count, 5000, `${count} × "${prefix}" on stdout`);
    return lines(prefix);
  }
  /** Rows of pg_stat_activity running `query`. */
  async function activeBackends(query: string): Promise<number[]> {
    const result = await check.query<{ pid: number }>("SELECT pid FROM pg_stat_activity WHERE query = $1 AND state = 'active'", [query]);
    return result.rows.map((r) => r.pid);
  }
  async function waitForBackend(query: string, present: boolean, ms = 5000): Promise<number[]> {
    const deadline = Date.now() + ms;
    for (;;) {
      const pids = await activeBackends(query);
      if ((pids.length > 0) === present) return pids;
      if (Date.now() > deadline) throw new Error(`timed out waiting for "${query}" to be ${present ? 'running' : 'gone'}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  it('does not connect before the first query, then keeps one connection per object', async () => {
    const lazy = async (): Promise<number> =>
      Number((await check.query("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = 'qrelay lazy'")).rows[0].n);
    assert.equal(await lazy(), 0);
    assert.equal(await send(sock, mail('lazy')), DISCARDED);
    assert.equal(await send(sock, mail('lazy')), DISCARDED);
    assert.equal(await lazy(), 1);
  });

  it('reconnects at once after a failure, then only every 10 s; a query tries at once', async () => {
    // listen() opened the connection at startup; it failed and was retried once at once
    await waitFor(() => attempts.length >= 2, 5000, 'two connection attempts');
    assert.ok(attempts[1]! - attempts[0]! < 1000, `the first reconnect came ${attempts[1]! - attempts[0]!} ms later`);
    await new Promise((r) => setTimeout(r, 500));
    for (let i = 2; i < attempts.length; i++) assert.ok(attempts[i]! - attempts[i - 1]! >= 9900, `attempt ${i + 1} came too early`);
    const before = attempts.length;
    const sent = Date.now();
    assert.equal(await send(sock, mail('retry')), DISCARDED);
    assert.equal(attempts.length, before + 1);
    assert.ok(attempts.at(-1)! - sent < 1000);
    assert.deepEqual(await printed('retry'), [
      `retry\tnil\t${hex(`connection to server on socket "${refusingDir}/.s.PGSQL.5432" failed: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\n\tbefore or while processing the request.\n`)}`,
    ]);
  });

  it('looks recipients up in a table and decides by the row', async () => {
    assert.equal(await send(sock, mail('lookup', ['bob@example.org'])), DISCARDED);
    assert.equal(await send(sock, mail('lookup', ['spam@example.org'])), REJECTED);
    assert.equal(await send(sock, mail('lookup', ['nobody@example.org'])), REJECTED);
    await check.query("UPDATE recipients SET verdict = 'reject' WHERE address = 'bob@example.org'");
    assert.equal(await send(sock, mail('lookup', ['bob@example.org'])), REJECTED);
    await check.query("UPDATE recipients SET verdict = 'discard' WHERE address = 'bob@example.org'");
  });

  it('sends parameters of every type as text and refuses other types without sending', async () => {
    assert.equal(await send(sock, mail('params')), DISCARDED);
    assert.deepEqual(await printed('params'), [
      "params\t15\tNULL|1|0|42|0.1|1e+16|1000000000000000|-2.5|it's ü|9007199254740993|0.3333333333333333|9007199254740992||-0.0001|1e-05",
    ]);
    assert.deepEqual(await printed('unsupported', 2), ['unsupported\tnil\tUnsupported query parameter type: table', 'unsupported\tnil\tUnsupported query parameter type: function']);
    assert.deepEqual(await printed('hole'), ['hole\tn=t,x=x']);
    assert.deepEqual(await printed('argerrors'), [
      [
        'argerrors',
        'Not enough parameters',
        "bad argument #2 to 'execute' (table expected, got nil)",
        'Too many parameters',
        "bad argument #1 to 'execute' (string expected, got table)",
        "bad argument #1 to 'execute' (pg.connection expected, got table)",
        "bad argument #2 to 'execute' (table expected, got string)",
      ].join('\t'),
    ]);
  });

  it('returns nil and libpq\'s error text for SQL errors, and the connection stays usable', async () => {
    assert.equal(await send(sock, mail('sqlerror')), DISCARDED);
    const reported = await printed('sqlerror', ERROR_QUERIES.length);
    ERROR_QUERIES.forEach((sql, i) => {
      const expected = server.psqlErrors(sql);
      assert.match(expected, /^ERROR: {2}/, `psql reports an error for ${sql}`);
      assert.equal(reported[i], `sqlerror\t${i + 1}\tnil\t${hex(expected)}`, `${sql}\n${Buffer.from(reported[i]!.split('\t')[3]!, 'hex').toString()}\n---\n${expected}`);
    });
    assert.deepEqual(await printed('paramerror'), [`paramerror\tnil\t${hex('ERROR:  invalid input syntax for type integer: "abc"\nCONTEXT:  unnamed portal parameter $1 = \'...\'\n')}`]);
    assert.deepEqual(await printed('after errors'), ['after errors\t1']);
  });

  it('fetches rows by name or number as text, NULL as a missing key', async () => {
    assert.equal(await send(sock, mail('fetch')), DISCARDED);
    assert.deepEqual(await printed('fetch a'), ['fetch a\ta=1,arr={1,2},c=x,d=2024-01-02,dup=last,f=1.5,t=t']);
    assert.deepEqual(await printed('fetch n'), ['fetch n\t1=1,3=x']);
    assert.deepEqual(await printed('fetch own'), ['fetch own\ttrue\ti=1,keep=yes']);
    assert.deepEqual(await printed('fetch mode'), ["fetch mode\tbad argument #2 to 'fetch' (Bad mode)\tbad argument #2 to 'fetch' (string expected, got table)\t2"]);
    assert.deepEqual(await printed('fetch rest'), ['fetch rest\t3\t0\t0']);
    assert.deepEqual(await printed('fetch last'), ['fetch last\ty=2']);
    assert.deepEqual(await printed('fetch command'), ['fetch command\tuserdata\t0']);
    assert.deepEqual(await printed('fetch empty'), ['fetch empty\t0']);
  });

  it('suspends only the querying mail: others are answered meanwhile', async () => {
    const started = Date.now();
    const slow = send(sock, mail('slow')).then((r) => ({ r, at: Date.now() - started }));
    await waitForBackend('SELECT pg_sleep(1)', true);
    const quick = await Promise.all(
      ['bob@example.org', 'spam@example.org', 'bob@example.org', 'spam@example.org'].map((to) => send(sock, mail('lookup', [to])).then((r) => ({ r, at: Date.now() - started }))),
    );
    assert.deepEqual(quick.map((q) => q.r), [DISCARDED, REJECTED, DISCARDED, REJECTED]);
    const { r, at } = await slow;
    assert.equal(r, DISCARDED);
    assert.ok(at >= 1000, `the slow mail took ${at} ms`);
    for (const q of quick) assert.ok(q.at < at, `a quick mail (${q.at} ms) was answered before the slow one (${at} ms)`);
  });

  it('runs the queries of one connection strictly one after another', async () => {
    const first = send(sock, mail('queue1'));
    await waitForBackend('SELECT pg_sleep(0.5)', true);
    const second = send(sock, mail('queue2'));
    assert.deepEqual(await Promise.all([first, second]), [DISCARDED, DISCARDED]);
    assert.deepEqual(await printed('queue done', 2), ['queue done\t1', 'queue done\t2']);
  });

  it('cancels the query on the server when the client goes away; the connection stays usable', async () => {
    const client = connect({ path: sock });
    client.on('error', () => {});
    client.write(mail('cancel'));
    const [pid] = await waitForBackend('SELECT pg_sleep(5)', true);
    const gone = Date.now();
    client.destroy();
    await waitForBackend('SELECT pg_sleep(5)', false, 3000);
    assert.ok(Date.now() - gone < 3000);
    assert.equal(await send(sock, mail('cancelnext')), DISCARDED);
    assert.deepEqual(await printed('cancelnext'), [`cancelnext\t${pid}`]);
    assert.equal(lines('cancel resumed').length, 0);
  });

  it('sets the schema given to pg:new', async () => {
    assert.equal(await send(sock, mail('schema')), DISCARDED);
    assert.deepEqual(await printed('schema'), ['schema\tin other\tin public\tother']);
  });

  it('accepts URIs and reports connection failures as nil, message', async () => {
    assert.equal(await send(sock, mail('connfail')), DISCARDED);
    assert.deepEqual(await printed('uri'), ['uri\tpostgres']);
    assert.deepEqual(await printed('missing'), [
      `missing\tnil\t${hex('connection to server on socket "/nonexistent/.s.PGSQL.5999" failed: No such file or directory\n\tIs the server running locally and accepting connections on that socket?\n')}`,
    ]);
    assert.deepEqual(await printed('garbled'), [`garbled\tnil\t${hex('missing "=" after "dbname" in connection info string\n')}`]);
    assert.deepEqual(await printed('new errors'), [
      "new errors\tbad argument #1 to 'new' (string expected, got no value)\tToo many parameters\tbad argument #1 to 'new' (string expected, got table)",
    ]);
  });

  it('runs listen callbacks for NOTIFY, coalesced, also after the connection was lost', async () => {
    assert.deepEqual(await printed('listen errors'), [
      "listen errors\tbad argument #1 to 'listen' (Duplicate notify name)\tNot enough parameters\tbad argument #2 to 'listen' (function expected, got string)\tToo many parameters",
    ]);
    // LISTEN runs at startup without any query
    const listening = async (): Promise<number[]> =>
      (await check.query<{ pid: number }>(`SELECT pid FROM pg_stat_activity WHERE query = 'LISTEN "qrelay_fail"'`)).rows.map((r) => r.pid);
    let pids: number[] = [];
    for (let i = 0; i < 100 && pids.length === 0; i++) {
      pids = await listening();
      if (pids.length === 0) await new Promise((r) => setTimeout(r, 50));
    }
    assert.equal(pids.length, 1, 'the LISTEN connection is open');

    await check.query('NOTIFY qrelay_test');
    assert.deepEqual(await printed('notify end'), ['notify end\t1']);
    assert.deepEqual(lines('notify start'), ['notify start\t1\t0']);
    // a burst: one run, and the three that arrive while it runs make one more, not three
    await check.query("NOTIFY qrelay_test, 'a'; NOTIFY qrelay_test, 'b'; NOTIFY qrelay_test, 'c'; NOTIFY qrelay_test, 'd'");
    await printed('notify end', 3);
    await new Promise((r) => setTimeout(r, 700));
    assert.deepEqual(lines('notify end'), ['notify end\t1', 'notify end\t2', 'notify end\t3']);

    // callbacks may query; their errors are ignored silently
    await check.query('NOTIFY qrelay_fail');
    assert.deepEqual(await printed('notify query'), ['notify query\t7']);
    assert.doesNotMatch(daemon.stderr(), /notify failure/);

    // a lost connection is reopened at once and LISTENs again
    await check.query('SELECT pg_terminate_backend($1)', [pids[0]]);
    let again: number[] = [];
    for (let i = 0; i < 100 && (again.length === 0 || again[0] === pids[0]); i++) {
      await new Promise((r) => setTimeout(r, 50));
      again = await listening();
    }
    assert.equal(again.length, 1);
    assert.notEqual(again[0], pids[0]);
    await check.query('NOTIFY qrelay_test');
    assert.deepEqual((await printed('notify end', 4)).at(-1), 'notify end\t4');
  });

  it('reconnects after a server restart; a query cut off returns no values', async () => {
    assert.equal(await send(sock, mail('restart')), DISCARDED);
    assert.deepEqual(await printed('restart ok'), ['restart ok\t1']);

    const cut = send(sock, mail('broken'));
    await waitForBackend('SELECT pg_sleep(3)', true);
    await check.end();
    await server.stop();
    assert.equal(await cut, DISCARDED);
    assert.deepEqual(await printed('broken'), ['broken\t0']);

    assert.equal(await send(sock, mail('restart')), DISCARDED);
    const [failed] = await printed('restart failed');
    assert.match(Buffer.from(failed!.split('\t')[1]!, 'hex').toString(), /^connection to server on socket ".*\/.s.PGSQL.5432" failed: /);

    await server.start();
    check = await server.client();
    assert.equal(await send(sock, mail('restart')), DISCARDED);
    assert.deepEqual(await printed('restart ok', 2), ['restart ok\t1', 'restart ok\t1']);
  });
});

describe('pg at configuration load', () => {
  it('execute outside a handler is a startup error, not a crash', async () => {
    const daemon = await startDaemon({
      config: `local db = pg:new('host=/nonexistent')\nprint(db:execute('SELECT 1'))\n`,
      noWait: true,
    });
    try {
      assert.equal(await daemon.exited, 1);
      await daemon.waitForStderr(/attempt to yield across a C-call boundary/);
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });
});

describe('pg at shutdown', () => {
  it('a stopping daemon closes its open connections with a Terminate message, not by just exiting', async () => {
    const server = await startPostgres();
    // the server logs (at debug1) a connection that ends without Terminate as "unexpected EOF"
    const debug = "options='-c log_min_messages=debug1'";
    const daemon = await startDaemon({
      config: `local db = pg:new(os.getenv('PG_CONNINFO') .. " application_name='qrelay shutdown' ${debug}")
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  db:execute('SELECT 1')
  return m:discard()
end)`,
      env: { PG_CONNINFO: server.conninfo },
    });
    const check = await server.client();
    const backends = async (): Promise<number> =>
      (await check.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'qrelay shutdown'")).rowCount ?? 0;
    try {
      assert.equal(await send(join(daemon.dir, 'qrelay.sock'), qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@example.com', ['b@example.org'])), DISCARDED);
      assert.equal(await backends(), 1);
      assert.equal(await daemon.stop(), 0);
      // the backend ends once it has read the end of the connection
      for (let i = 0; i < 200 && (await backends()) > 0; i++) await new Promise((r) => setTimeout(r, 25));
      assert.equal(await backends(), 0);
      assert.doesNotMatch(server.log(), /unexpected EOF on client connection/);

      // the same server does log a connection that is dropped without Terminate
      const { default: pgModule } = await import('pg');
      const dropped = new pgModule.Client({ host: server.dir, user: 'postgres', database: 'postgres', options: '-c log_min_messages=debug1' });
      dropped.on('error', () => {});
      await dropped.connect();
      await dropped.query('SELECT 1');
      (dropped as unknown as { connection: { stream: { destroy(): void } } }).connection.stream.destroy();
      await waitFor(() => /unexpected EOF on client connection/.test(server.log()), 5000, 'the dropped connection in the server log');
    } finally {
      await daemon.stop();
      removeDir(daemon.dir);
    }
  });
});
