// What the engine saves per mail stays invisible to scripts: the client's
// sender, recipients and credentials reach Lua only when a script reads
// them, userdata come from a batch, accepted address strings are
// remembered, and close() reuses the state the action carried unless the
// script changed it since (src/lua/mail-session.ts, runtime/mail.lua).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import type { LuaEngine } from '../src/lua/engine.js';
import { loadTestEngine, type TestEngine } from './helpers/run-lua.js';
import type { Decision, MailInput } from '../src/policy.js';

const CONFIG = `
local kept
qmqp_listen('/nonexistent/1', function(m)
  local before = table.concat({ m.sender, tostring(m.pid), tostring(m.uid), tostring(m.gid), #m.recipients, m.recipients[1], m.recipients[2] }, ' ')
  m.sender = 'changed@example.org'
  m:insert_header('X-Read', before)
  m:insert_header('X-After', m.sender .. ' ' .. tostring(m.recipients[2]))
  return m:discard()
end)
qmqp_listen('/nonexistent/2', function(m)
  m.sender = 'first@example.org'
  m:insert_header('X-Sender', m.sender)
  return m:discard()
end)
qmqp_listen('/nonexistent/3', function(m)
  local seen, distinct = {}, 0
  for i = 1, 40 do
    local a = i % 2 == 0 and m:discard() or m:reject()
    if not seen[a] then distinct = distinct + 1 end
    seen[a] = true
    assert(type(a) == 'userdata' and getmetatable(a) == 'qrelay.action')
  end
  m:insert_header('X-Distinct', distinct)
  return m:discard()
end)
qmqp_listen('/nonexistent/4', function(m)
  local results = {}
  for i = 1, 2 do
    results[#results + 1] = select(2, pcall(m.connect, m, 'no such host name'))
    results[#results + 1] = tostring(pcall(m.connect, m, '127.0.0.1:1'))
  end
  for i, r in ipairs(results) do m:insert_header('X-' .. i, (tostring(r):gsub('[^ -~]', '?'))) end
  return m:connect('127.0.0.1:1')
end)
qmqp_listen('/nonexistent/5', function(m)
  kept = m
  m.account = 'early'
  return m:discard()
end)
local quiet, in_reload
qmqp_listen('/nonexistent/6', function(m)
  quiet = m
  local loaded = m.sender -- read: a later read needs no call to the engine
  return m:discard()
end)
qmqp_listen('/nonexistent/7', function(m)
  local ok, err = pcall(function() return quiet.sender end)
  m:insert_header('X-Next-Mail', tostring(ok) .. ' ' .. tostring(err):gsub('^[^:]*:%d+: ', ''))
  if in_reload then m:insert_header('X-Reload', in_reload) end
  return m:discard()
end)
function reload()
  if quiet then
    local ok, err = pcall(function() return quiet.sender end)
    in_reload = tostring(ok) .. ' ' .. tostring(err):gsub('^[^:]*:%d+: ', '')
    return
  end
  kept.account = 'late'
  kept:insert_header('X-Late', 'yes')
end
`;

const MAIL: MailInput = {
  sender: 'from@example.org',
  recipients: ['one@example.org', 'two@example.org'],
  credentials: { pid: 4242, uid: 1000, gid: 100 },
  peerPidfd: () => undefined,
};

function headers(decision: Decision): string[] {
  assert.equal(decision.kind, 'action');
  return decision.mail.headers.map((h) => h.toString('latin1'));
}

describe('what the engine saves per mail, as scripts see it', () => {
  let loaded: TestEngine;
  let engine: LuaEngine;
  before(async () => {
    loaded = await loadTestEngine(CONFIG, 'qrelay-mail-input-');
    engine = loaded.engine;
  });
  after(() => loaded.dispose());

  const decide = (listener: number, mail = MAIL): Promise<Decision> => firstValueFrom(engine.open(listener, mail).decision$);

  it("reads the client's sender, recipients and credentials on demand; an assigned sender wins", async () => {
    const decision = await decide(1);
    assert.deepEqual(headers(decision), [
      'X-Read: from@example.org 4242 1000 100 2 one@example.org two@example.org\r\n',
      'X-After: changed@example.org two@example.org\r\n',
    ]);
    assert.equal(decision.kind === 'action' && decision.mail.sender, 'changed@example.org');
    const anonymous = await decide(1, { ...MAIL, credentials: undefined, recipients: ['only@example.org'] });
    assert.equal(headers(anonymous)[0], 'X-Read: from@example.org nil nil nil 1 only@example.org\r\n');
    // more values than a C function's stack holds without growing it
    const many = Array.from({ length: 1024 }, (_, i) => `r${i}@example.org`);
    assert.equal(headers(await decide(1, { ...MAIL, recipients: many }))[0], 'X-Read: from@example.org 4242 1000 100 1024 r0@example.org r1@example.org\r\n');
  });

  it('a sender set before any read is the one the action carries', async () => {
    const decision = await decide(2);
    assert.deepEqual(headers(decision), ['X-Sender: first@example.org\r\n']);
    assert.equal(decision.kind === 'action' && decision.mail.sender, 'first@example.org');
  });

  it('every action object is a new userdata, past the size of a batch', async () => {
    assert.deepEqual(headers(await decide(3)), ['X-Distinct: 40\r\n']);
  });

  it('a refused address string is refused every time, an accepted one keeps working', async () => {
    const lines = headers(await decide(4));
    assert.equal(lines.length, 4);
    assert.match(lines[0]!, /^X-1: (Garbage after host name|Failed to resolve)/);
    assert.equal(lines[1], 'X-2: true\r\n');
    assert.equal(lines[2], lines[0]!.replace('X-1', 'X-3'));
    assert.equal(lines[3], 'X-4: true\r\n');
  });

  it('the libraries find a mail by its id while it is open, and no mail by the placeholder id 0', async () => {
    assert.equal(engine.mailInput(0), undefined);
    const mine: MailInput = { ...MAIL };
    const session = engine.open(2, mine);
    await firstValueFrom(session.decision$);
    const ids = [...Array(4096).keys()];
    assert.equal(ids.filter((id) => engine.mailInput(id) === mine).length, 1);
    session.close();
    assert.equal(ids.filter((id) => engine.mailInput(id) === mine).length, 0);
    assert.equal(engine.mailInput(0), undefined);
  });

  it("close() gives the action's state when nothing changed since, and the new state when something did", async () => {
    const session = engine.open(2, MAIL);
    const decision = await firstValueFrom(session.decision$);
    assert.equal(decision.kind, 'action');
    assert.deepEqual(session.close(), decision.kind === 'action' ? decision.mail : undefined);

    const later = engine.open(5, MAIL);
    const early = await firstValueFrom(later.decision$);
    assert.deepEqual(early.kind === 'action' && early.mail, { sender: 'from@example.org', account: 'early', headers: [] });
    assert.deepEqual(await firstValueFrom(engine.reload()), { kind: 'ran' });
    assert.deepEqual(later.close(), { sender: 'from@example.org', account: 'late', headers: [Buffer.from('X-Late: yes\r\n')] });
  });

  it('a mail closed without a call into Lua is stale for the next mail and for reload()', async () => {
    const first = engine.open(6, MAIL);
    await firstValueFrom(first.decision$);
    first.close();
    assert.deepEqual(headers(await decide(7)), ['X-Next-Mail: false Stale object\r\n']);
    const second = engine.open(6, MAIL);
    await firstValueFrom(second.decision$);
    second.close();
    assert.deepEqual(await firstValueFrom(engine.reload()), { kind: 'ran' });
    assert.deepEqual(headers(await decide(7)), ['X-Next-Mail: false Stale object\r\n', 'X-Reload: false Stale object\r\n']);
  });
});
