// The values that cross from Lua to TypeScript when a handler is done (the
// mail's state and its action) are written by src/lua/runtime/outcome.lua
// and read by src/lua/outcome-layout.ts.  These handlers set every field
// of every action kind to a value no other field has, so a field moved,
// dropped or added on one side alone shows up as a wrong Decision here.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import type { LuaEngine } from '../src/lua/engine.js';
import { loadTestEngine, type TestEngine } from './helpers/run-lua.js';
import type { Decision, MailInput } from '../src/policy.js';
import { parseNumericAddress } from '../src/protocol/socket-address.js';

const CONFIG = `
local object = qmqp_resolve('127.0.0.9:7009')
qmqp_listen('/nonexistent/1', function(m)
  m:insert_header('X-One', 'first')
  m:insert_header('X-Two', 'second')
  m.account = 'the-account'
  m.sender = 'changed@example.org'
  return m:connect('127.0.0.1:7001', object, '[::1]:7002', { order = 'random', connect_timeout = 2.5, timeout = 7 })
end)
qmqp_listen('/nonexistent/2', function(m)
  return m:connect({ '127.0.0.3' })
end)
qmqp_listen('/nonexistent/3', function(m)
  m:insert_header('X-Exec', 'yes')
  return m:exec('/bin/prog', 'arg 1', 42, { timeout = 11, env = { ONLY = 'one' } })
end)
qmqp_listen('/nonexistent/4', function(m)
  return m:exec_raw('/bin/raw')
end)
qmqp_listen('/nonexistent/5', function(m) return m:discard() end)
qmqp_listen('/nonexistent/6', function(m) return m:reject() end)
qmqp_listen('/nonexistent/7', function(m)
  m:insert_header('X-Late', 'after')
  coroutine.yield()
end)
`;

const MAIL: MailInput = {
  sender: 'from@example.org',
  recipients: ['to@example.org'],
  credentials: { pid: 4242, uid: 1000, gid: 100 },
  peerPidfd: () => undefined,
};

const noMail = { sender: 'from@example.org', account: undefined, headers: [] };

describe('the layout of a handler outcome (outcome.lua → outcome-layout.ts)', () => {
  let loaded: TestEngine;
  let engine: LuaEngine;
  before(async () => {
    loaded = await loadTestEngine(CONFIG, 'qrelay-layout-');
    engine = loaded.engine;
  });
  after(() => loaded.dispose());

  const decide = (listener: number): Promise<Decision> => firstValueFrom(engine.open(listener, MAIL).decision$);

  it('connect: mail state, order, both timeouts, string and object servers in order', async () => {
    assert.deepEqual(await decide(1), {
      kind: 'action',
      mail: { sender: 'changed@example.org', account: 'the-account', headers: [Buffer.from('X-One: first\r\n'), Buffer.from('X-Two: second\r\n')] },
      action: {
        kind: 'connect',
        servers: [parseNumericAddress('127.0.0.1:7001', 628), parseNumericAddress('127.0.0.9:7009', 628), parseNumericAddress('[::1]:7002', 628)],
        order: 'random',
        connectTimeoutMs: 2500,
        timeoutMs: 7000,
      },
    });
  });

  it('connect without options: sequential, no timeouts', async () => {
    assert.deepEqual(await decide(2), {
      kind: 'action',
      mail: noMail,
      action: { kind: 'connect', servers: [parseNumericAddress('127.0.0.3', 628)], order: 'sequential', connectTimeoutMs: undefined, timeoutMs: undefined },
    });
  });

  it('exec: argv, timeout and environment', async () => {
    assert.deepEqual(await decide(3), {
      kind: 'action',
      mail: { ...noMail, headers: [Buffer.from('X-Exec: yes\r\n')] },
      action: { kind: 'exec', argv: ['/bin/prog', 'arg 1', '42'], env: ['ONLY=one'], timeoutMs: 11000 },
    });
  });

  it('exec_raw without options: no environment, no timeout', async () => {
    assert.deepEqual(await decide(4), {
      kind: 'action',
      mail: noMail,
      action: { kind: 'exec_raw', argv: ['/bin/raw'], env: undefined, timeoutMs: undefined },
    });
  });

  it('discard and reject carry no fields', async () => {
    assert.deepEqual(await decide(5), { kind: 'action', mail: noMail, action: { kind: 'discard' } });
    assert.deepEqual(await decide(6), { kind: 'action', mail: noMail, action: { kind: 'reject' } });
  });

  it('each outcome carries nothing of the one before (driver.lua lays them out in one table)', async () => {
    const longest = await decide(1);
    assert.deepEqual(await decide(4), {
      kind: 'action',
      mail: noMail,
      action: { kind: 'exec_raw', argv: ['/bin/raw'], env: undefined, timeoutMs: undefined },
    });
    assert.deepEqual(await decide(5), { kind: 'action', mail: noMail, action: { kind: 'discard' } });
    await decide(3);
    assert.deepEqual(await decide(2), {
      kind: 'action',
      mail: noMail,
      action: { kind: 'connect', servers: [parseNumericAddress('127.0.0.3', 628)], order: 'sequential', connectTimeoutMs: undefined, timeoutMs: undefined },
    });
    assert.deepEqual(await decide(1), longest);
  });

  it("the mail's final state at close, also while the handler still waits", () => {
    const session = engine.open(7, MAIL);
    const subscription = session.decision$.subscribe();
    assert.deepEqual(session.close(), { ...noMail, headers: [Buffer.from('X-Late: after\r\n')] });
    subscription.unsubscribe();
  });
});
