// The mail object, actions and the handler's execution model as scripts
// see them (docs/configuration.md), through the real daemon.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downstreamServer, netstring, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';
import { removeDir, startDaemon, waitFor, type RunningDaemon } from './helpers/daemon.js';

// Each test picks a handler by the recipient's local part; handlers report
// through print() (stdout) and answer through the action.
const CONFIG = `
local dir = os.getenv('TEST_DIR')
local down = dir .. '/down.sock'
local startup_only = { qmqp_listen = qmqp_listen, max_size = max_size, qmqp_resolve = qmqp_resolve,
  log_resolve = log_resolve, control_resolve = control_resolve }
local kept_resolve = qmqp_resolve
local resolved = qmqp_resolve('127.0.0.1:2525')
local stored_action, kept_mail, waiting

local function try(f, ...)
  local ok, err = pcall(f, ...)
  return ok and 'ok' or tostring(err):gsub('^[^:]*:%d+: ', '')
end

local handlers = {}
function handlers.fields(m)
  print('fields', m.sender, m.pid, m.uid, m.gid, #m.recipients, m.recipients[2], type(m), getmetatable(m))
  local r = m.recipients
  r[1] = 'changed'
  print('fresh', m.recipients[1])
  print('unknown', try(function() return m.account end), try(function() return m.nothing end),
    try(function() return m[1] end), try(function() return m.constructor end))
  return m:discard()
end
function handlers.sender(m)
  print('sender', try(function() m.sender = 'not valid' end), try(function() m.sender = '' end),
    try(function() m.sender = {} end), try(function() m.pid = 1 end))
  m.sender = 'new@example.net'
  print('sender now', m.sender)
  return m:connect(down)
end
function handlers.account(m)
  print('account', try(function() m.account = '' end), try(function() m.account = 'acct' end),
    try(function() m.account = nil end), try(function() m.account = 42 end))
  return m:discard()
end
function handlers.headers(m)
  print('illegal', try(m.insert_header, m, 'Bad:Name', 'v'), try(m.insert_header, m, '', 'v'),
    try(m.insert_header, m, 'X', 'tab\\there'), try(m.insert_header, m, 'X', 'nl\\n'),
    try(m.insert_header, m, 'X'), try(m.insert_header, m, 'X', 'v', 'w'), try(m.insert_header, m, 'X', {}))
  m:insert_header('X-Uid', m.uid / 1)
  m:insert_header('X-Float', 10 / 4)
  m:insert_header('X-Empty', '')
  for i = 4, 16 do m:insert_header('X-N', i) end
  print('17th', try(m.insert_header, m, 'X-Too', 'many'))
  return m:connect(down)
end
function handlers.stale(m)
  kept_mail = m
  return m:discard()
end
function handlers.stalecheck(m)
  print('stale', try(function() return kept_mail.sender end), try(function() kept_mail:insert_header('A', 'b') end),
    try(function() kept_mail.sender = 'a@b.c' end))
  return m:discard()
end
function handlers.storeaction(m)
  stored_action = m:reject()
  return m:discard()
end
function handlers.useaction(m) return stored_action end
function handlers.actionerrors(m)
  print('actions', try(m.discard, m, 1), try(m.reject, m, nil), try(m.connect, m), try(m.connect, m, {}),
    try(m.connect, m, 'localhost'), try(m.connect, m, '1.2.3.4:x:y'), try(m.exec, m), try(m.exec, m, {}),
    try(m.exec, m, '/bin/true', {timeout = 0}), try(m.exec, m, '/bin/true', {timeout = 'x'}),
    try(m.exec, m, '/bin/true', {env = {A = 1}}), try(m.exec, m, '/bin/true', {bogus = 1}),
    try(m.exec, m, '/bin/true', {timeout = 3600.5}), try(m.exec, m, '/bin/true', {timeout = '1.5'}),
    try(m.exec, m, '/bin/true', nil, 'x'))
  local many = {}
  for i = 1, 32 do many[i] = 'a' end
  print('args', try(m.exec, m, table.unpack(many)), try(m.exec, m, 'x', table.unpack(many)))
  return m:discard()
end
function handlers.globals(m)
  print('globals', qmqp_listen == nil, max_size == nil, qmqp_resolve == nil, log_resolve == nil,
    control_resolve == nil, systemd ~= nil, type(systemd), systemd ~= 'systemd', tostring(resolved))
  return m:connect(resolved)
end
function handlers.compat(m)
  print('compat', unpack({'a', 'b'}), loadstring('return 7')(), table.getn({1, 2, 3}), math.pow(2, 10),
    bit.band(0xff, 0x0f), bit.tohex(255, 4), string.format('%d', 3.7), tostring(10 / 2), math.log10(1000),
    type(jit), select('#', unpack({1, nil, 3}, 1, 3)))
  return m:discard()
end
function handlers.sleepy(m)
  local before = os.time()
  sleep(0.2)
  print('slept', pcall(sleep, 0.01))
  return m:discard()
end
function handlers.yielder(m)
  waiting = coroutine.running()
  print('yielding')
  coroutine.yield()
  return m:reject()
end
function handlers.resumer(m)
  print('resume', coroutine.resume(waiting))
  return m:discard()
end
function handlers.nested(m)
  local co = coroutine.create(function() sleep(0.01) end)
  print('nested', coroutine.resume(co))
  return m:discard()
end
function handlers.sandbox(m)
  local ok1, v1 = pcall(function() return m.sender.constructor end)
  local ok2, v2 = pcall(function() return getmetatable(m).__index end)
  local ok3 = pcall(function() return m.__index end)
  print('sandbox', type(print), ok1, v1, ok2, v2, ok3, string.format('%s', 2^53))
  return m:discard()
end

qmqp_listen(dir .. '/qrelay.sock', function(m)
  return handlers[m.recipients[1]:match('^(.-)@')](m)
end)
`;

describe('the mail object and the handler', () => {
  let daemon: RunningDaemon;
  let sock: string;
  let down: DownstreamServer;

  before(async () => {
    daemon = await startDaemon({ config: CONFIG });
    sock = join(daemon.dir, 'qrelay.sock');
    down = await downstreamServer(join(daemon.dir, 'down.sock'), () => netstring('Kok'));
  });
  after(async () => {
    await down.close();
    assert.equal(await daemon.stop(), 0);
    removeDir(daemon.dir);
  });

  const mail = (handler: string, extra: string[] = []): Buffer => qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'alice@example.com', [`${handler}@example.org`, ...extra]);
  async function printed(handler: string, prefix: string, expectedResponse = '10:Kdiscarded,'): Promise<string> {
    assert.equal(await send(sock, mail(handler, ['second@example.org'])), expectedResponse);
    await waitFor(() => daemon.stdout().split('\n').some((l) => l.startsWith(prefix + '\t')), 5000, prefix);
    return daemon.stdout().split('\n').filter((l) => l.startsWith(prefix + '\t')).at(-1)!;
  }

  it('reads sender, recipients, credentials', async () => {
    const uid = process.getuid!();
    assert.equal(await printed('fields', 'fields'), `fields\talice@example.com\t${process.pid}\t${uid}\t${process.getgid!()}\t2\tsecond@example.org\tuserdata\tqrelay.mail`);
    assert.equal(await printed('fields', 'fresh'), 'fresh\tfields@example.org');
    assert.equal(await printed('fields', 'unknown'), 'unknown\tUnknown attribute\tUnknown attribute\tUnknown attribute\tUnknown attribute');
  });

  it('validates sender assignments and relays the new sender', async () => {
    down.requests.length = 0;
    const line = await printed('sender', 'sender', '3:Kok,');
    assert.match(line, /^sender\t.*Malformed email address.*\t.*Malformed email address.*\t.*string expected, got table.*\tCannot change this attribute$/);
    assert.match(down.requests[0]!.toString('latin1'), /,15:new@example.net,18:sender@example.org,/);
  });

  it('makes account write-only', async () => {
    assert.match(await printed('account', 'account'), /^account\t.*Empty string not allowed.*\tok\tok\tok$/);
  });

  it('checks headers, keeps 5.1 number formatting and the 16-header limit', async () => {
    down.requests.length = 0;
    const line = await printed('headers', 'illegal', '3:Kok,');
    const parts = line.split('\t').slice(1);
    assert.equal(parts.length, 7);
    assert.match(parts[0]!, /Illegal header name/);
    assert.match(parts[1]!, /Illegal header name/);
    assert.match(parts[2]!, /Illegal header value/);
    assert.match(parts[3]!, /Illegal header value/);
    assert.match(parts[4]!, /Invalid parameters/);
    assert.match(parts[5]!, /Invalid parameters/);
    assert.match(parts[6]!, /Illegal header value: string expected, got table/);
    assert.match(daemon.stdout(), /17th\tToo many headers/);
    const relayed = down.requests[0]!.toString('latin1');
    const nHeaders = Array.from({ length: 13 }, (_, i) => `X-N: ${16 - i}\r\n`).join('');
    assert.ok(relayed.includes(`${nHeaders}X-Empty: \r\nX-Float: 2.5\r\nX-Uid: ${process.getuid!()}\r\nReceived: from PID=${process.pid} UID=`), relayed);
  });

  it('makes objects stale after the mail', async () => {
    await send(sock, mail('stale'));
    assert.equal(await printed('stalecheck', 'stale'), 'stale\tStale object\tStale object\tStale object');
  });

  it('lets actions be stored and returned for another mail', async () => {
    assert.equal(await send(sock, mail('storeaction')), '10:Kdiscarded,');
    assert.equal(await send(sock, mail('useaction')), '9:Drejected,');
  });

  it('checks action arguments and options', async () => {
    const line = (await printed('actionerrors', 'actions')).split('\t').slice(1);
    const expected = [
      /Invalid parameters/, /Invalid parameters/, /Invalid parameters/, /SocketAddress expected, got table/,
      /Failed to resolve "localhost":"628"/, /Garbage after host name|Failed to resolve/, /Not enough parameters/, /string expected, got table/,
      /Bad timeout value/, /Timeout is not a number/, /Environment value is not a string/, /Unknown option/,
      /Bad timeout value/, /^ok$/, /string expected, got nil/,
    ];
    assert.equal(line.length, expected.length, line.join(' | '));
    expected.forEach((re, i) => assert.match(line[i]!, re, `argument check ${i}: ${line[i]}`));
    assert.match(await printed('actionerrors', 'args'), /^args\tok\t.*Too many arguments/);
  });

  it('removes the startup globals at runtime and keeps address objects', async () => {
    const line = await printed('globals', 'globals', '15:Zconnect failed,');
    assert.equal(line, 'globals\ttrue\ttrue\ttrue\ttrue\ttrue\ttrue\tuserdata\ttrue\t127.0.0.1:2525');
  });

  it('provides the Lua 5.1 names configs rely on (docs/lua-compat.md)', async () => {
    assert.equal(await printed('compat', 'compat'), 'compat\ta\t7\t3\t1024\t15\t00ff\t3\t5\t3\ttable\t3');
  });

  it('suspends handlers in sleep and refuses library yields from foreign coroutines (docs/mail.md)', async () => {
    const started = Date.now();
    assert.equal(await printed('sleepy', 'slept'), 'slept\ttrue');
    assert.ok(Date.now() - started >= 200);
    assert.match(await printed('nested', 'nested'), /^nested\tfalse\t.*yield/);
  });

  it('tracks handler coroutines resumed by script code (docs/mail.md)', async () => {
    const { exchange } = await import('./helpers/qmqp.js');
    const pending = exchange(sock, mail('yielder'));
    // the handler prints, then yields in the same run: once the line is out, it waits
    await waitFor(() => daemon.stdout().split('\n').includes('yielding'), 5000, 'the yielder to yield');
    assert.match(await printed('resumer', 'resume'), /^resume\ttrue/);
    assert.equal((await pending).response.toString(), '9:Drejected,');
  });

  it('never lets a script reach JavaScript objects', async () => {
    const line = await printed('sandbox', 'sandbox');
    assert.equal(line, 'sandbox\tfunction\ttrue\tnil\ttrue\tnil\tfalse\t9.007199254741e+15');
  });
});

describe('a handler stuck in a loop', () => {
  it('gets Zscript failed after the run-time limit while other mails keep flowing', async () => {
    const daemon = await startDaemon({
      config: `
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  if m.recipients[1]:match('^loop@') then
    while true do end
  end
  if m.recipients[1]:match('^pcall@') then
    -- catching the error does not help: the limit keeps firing
    while true do pcall(function() while true do end end) end
  end
  return m:discard()
end)`,
      env: { QRELAY_LUA_TIME_LIMIT_MS: '300' },
    });
    const sock = join(daemon.dir, 'qrelay.sock');
    try {
      const started = Date.now();
      assert.equal(await send(sock, qmqpRequest('m', 'a@b.c', ['loop@x.y'])), '14:Zscript failed,');
      assert.ok(Date.now() - started < 3000);
      await daemon.waitForStderr(/Lua code ran for more than 0\.3 s without pausing/);
      assert.equal(await send(sock, qmqpRequest('m', 'a@b.c', ['pcall@x.y'])), '14:Zscript failed,');
      assert.equal(await send(sock, qmqpRequest('m', 'a@b.c', ['ok@x.y'])), '10:Kdiscarded,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });
});
