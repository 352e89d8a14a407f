// The mail object's argument checks as a handler meets them, through the
// engine itself (no daemon): insert_header's checks keep holding for
// names and values it has already found legal (mail.lua remembers those),
// and m:connect with one address gives what the list form gives
// (actions.lua takes a shorter way for it).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { firstValueFrom } from 'rxjs';
import type { LuaEngine } from '../src/lua/engine.js';
import { loadTestEngine, type TestEngine } from './helpers/run-lua.js';
import type { Decision, MailInput } from '../src/policy.js';
import { parseNumericAddress } from '../src/protocol/socket-address.js';

const CONFIG = `
local object = qmqp_resolve('127.0.0.9:7009')
local function try(f, ...)
  local ok, err = pcall(f, ...)
  return ok and 'ok' or (tostring(err):gsub('^[^:]*:%d+: ', ''))
end
local function checks(m)
  return try(m.insert_header, m, 'X-Same', 'legal'), try(m.insert_header, m, 'X-Same', 'not\\tlegal'),
    try(m.insert_header, m, 'Bad:Name', 'legal'), try(m.insert_header, m, 'X-Same', {}),
    try(m.insert_header, m, 'X-Same', 'legal'), try(m.insert_header, m, 'legal', 'X-Same'),
    try(m.insert_header, m, 'X-Long', string.rep('a', 300)), try(m.insert_header, m, 'X-Long', string.rep('a', 300) .. '\\n')
end
qmqp_listen('/nonexistent/1', function(m)
  local r = { checks(m) }
  -- more legal names and values than mail.lua remembers (and past 16 headers)
  for i = 1, 1500 do pcall(m.insert_header, m, 'X-N' .. i, 'v' .. i) end
  for _, v in ipairs({ checks(m) }) do r[#r + 1] = v end
  error(table.concat(r, '|'), 0)
end)
qmqp_listen('/nonexistent/2', function(m) return m:connect('127.0.0.5:7005') end)
qmqp_listen('/nonexistent/3', function(m) return m:connect({ '127.0.0.5:7005' }) end)
qmqp_listen('/nonexistent/4', function(m) return m:connect(object) end)
qmqp_listen('/nonexistent/5', function(m) local a = m:connect(true) return a end)
qmqp_listen('/nonexistent/6', function(m) local a = m:connect({ true }) return a end)
qmqp_listen('/nonexistent/7', function(m) local a = m:connect(nil) return a end)
qmqp_listen('/nonexistent/8', function(m) local a = m:connect('127.0.0.5:7005', nil) return a end)
`;

const MAIL: MailInput = { sender: 'from@example.org', recipients: ['to@example.org'], credentials: undefined, peerPidfd: () => undefined };

const VALUE = "bad argument #2 to 'insert_header' (Illegal header value)";
const NAME = "bad argument #1 to 'insert_header' (Illegal header name)";
const TABLE = "bad argument #2 to 'insert_header' (Illegal header value: string expected, got table)";

describe("the mail object's argument checks", () => {
  let loaded: TestEngine;
  let engine: LuaEngine;
  before(async () => {
    loaded = await loadTestEngine(CONFIG, 'qrelay-mail-checks-');
    engine = loaded.engine;
  });
  after(() => loaded.dispose());

  const decide = (listener: number): Promise<Decision> => firstValueFrom(engine.open(listener, MAIL).decision$);

  it('insert_header refuses an illegal name or value after legal ones, in later mails too', async () => {
    for (let mail = 0; mail < 2; mail++) {
      const decision = await decide(1);
      assert.equal(decision.kind, 'script-failed');
      assert.deepEqual((decision as { log: string }).log.split('|'), [
        'ok', VALUE, NAME, TABLE, 'ok', 'ok', 'ok', VALUE,
        'Too many headers', VALUE, NAME, TABLE, 'Too many headers', 'Too many headers', 'Too many headers', VALUE,
      ]);
    }
  });

  it('connect with one address string is its list form', async () => {
    const expected: Decision = {
      kind: 'action',
      mail: { sender: 'from@example.org', account: undefined, headers: [] },
      action: { kind: 'connect', servers: [parseNumericAddress('127.0.0.5:7005', 628)], order: 'sequential', connectTimeoutMs: undefined, timeoutMs: undefined },
    };
    assert.deepEqual(await decide(2), expected);
    assert.deepEqual(await decide(3), expected);
  });

  it('connect with one address object relays to its addresses', async () => {
    const decision = await decide(4);
    assert.equal(decision.kind, 'action');
    assert.deepEqual((decision as Extract<Decision, { kind: 'action' }>).action, {
      kind: 'connect', servers: [parseNumericAddress('127.0.0.9:7009', 628)], order: 'sequential', connectTimeoutMs: undefined, timeoutMs: undefined,
    });
  });

  it("connect's type error names the script's line, with one address as in a list", async () => {
    const one = await decide(5);
    assert.equal(one.kind, 'script-failed');
    assert.match((one as { log: string }).log, /config\.lua:\d+: bad argument #1 to 'connect' \(SocketAddress expected, got boolean\)$/);
    const listed = await decide(6);
    assert.match((listed as { log: string }).log, /config\.lua:\d+: bad argument #1 to 'connect' \(SocketAddress expected, got boolean at index 1\)$/);
  });

  it('connect refuses a nil address (no action without servers)', async () => {
    const alone = await decide(7);
    assert.equal(alone.kind, 'script-failed');
    assert.match((alone as { log: string }).log, /config\.lua:\d+: bad argument #1 to 'connect' \(SocketAddress expected, got nil\)$/);
    const second = await decide(8);
    assert.equal(second.kind, 'script-failed');
    assert.match((second as { log: string }).log, /config\.lua:\d+: bad argument #2 to 'connect' \(SocketAddress expected, got nil\)$/);
  });
});
