// The run-time limit reaches every coroutine the driver starts although
// the main thread runs the mail entry points without the hook (it costs at
// every VM instruction; src/lua/run-limits.ts, hookMain): a handler's loop,
// a loop in a coroutine the handler made, a loop in reload() and in the
// _G lookup of `reload` are all stopped, in any order of mails and reloads.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import type { LuaEngine } from '../src/lua/engine.js';
import { loadTestEngine, type TestEngine } from './helpers/run-lua.js';
import type { Decision, MailInput } from '../src/policy.js';

const CONFIG = `
qmqp_listen('/nonexistent/1', function(m) while true do end end)
qmqp_listen('/nonexistent/2', function(m)
  local co = coroutine.create(function() while true do end end)
  coroutine.resume(co)
  return m:discard()
end)
qmqp_listen('/nonexistent/3', function(m) return m:discard() end)
qmqp_listen('/nonexistent/4', function(m)
  setmetatable(_G, { __index = function(_, key) if key == 'reload' then while true do end end end })
  return m:discard()
end)
qmqp_listen('/nonexistent/5', function(m)
  function reload() while true do end end
  return m:discard()
end)
`;

const MAIL: MailInput = { sender: 'from@example.org', recipients: ['to@example.org'], credentials: undefined, peerPidfd: () => undefined };
const STOPPED = 'Lua code ran for more than 0.2 s without pausing';

describe('the run-time limit with the main thread unhooked for mails', () => {
  let loaded: TestEngine;
  let engine: LuaEngine;
  before(async () => {
    loaded = await loadTestEngine(CONFIG, 'qrelay-run-time-hook-', { runTimeLimitMs: 200 });
    engine = loaded.engine;
  });
  after(() => loaded.dispose());

  const decide = async (listener: number): Promise<Decision> => {
    const session = engine.open(listener, MAIL);
    const decision = await firstValueFrom(session.decision$);
    session.close();
    return decision;
  };
  const discarded = { kind: 'action', mail: { sender: 'from@example.org', account: undefined, headers: [] }, action: { kind: 'discard' } };

  it("stops a handler's loop, and one in a coroutine the handler made, mail after mail", async () => {
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await decide(1), { kind: 'script-failed', log: STOPPED });
      assert.deepEqual(await decide(3), discarded);
      assert.deepEqual(await decide(2), { kind: 'script-failed', log: STOPPED });
    }
  });

  it('stops a loop in the lookup of reload and in reload() itself, and mails after them', async () => {
    assert.deepEqual(await firstValueFrom(engine.reload()), { kind: 'none' });
    assert.deepEqual(await decide(4), discarded);
    assert.deepEqual(await firstValueFrom(engine.reload()), { kind: 'failed', error: STOPPED });
    assert.deepEqual(await decide(1), { kind: 'script-failed', log: STOPPED });
    assert.deepEqual(await decide(5), discarded);
    assert.deepEqual(await firstValueFrom(engine.reload()), { kind: 'failed', error: STOPPED });
    assert.deepEqual(await decide(2), { kind: 'script-failed', log: STOPPED });
  });
});
