// What one script can take from the daemon: the Lua heap cap
// (lua_memory_limit) and the run-time limit, which scripts cannot switch off.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { removeDir, startDaemon, type RunningDaemon } from './helpers/daemon.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

const CAP_MIB = 32;

const CONFIG = `
lua_memory_limit = ${CAP_MIB} * 1024 * 1024
local cases = {
  grow = function(m) local t = {} while true do t[#t + 1] = string.rep('x', 1e6) end end,
  -- catching the memory error does not help: the run is stopped anyway
  catch = function(m) local t = {} while true do pcall(function() t[#t + 1] = string.rep('x', 1e6) end) end end,
  tables = function(m) local t = {} while true do pcall(function() for i = 1, 1e9 do t[#t + 1] = { i } end end) end end,
  huge = function(m) local s = string.rep('x', 1e9) return m:discard() end,
  -- garbage is collected when the cap is near: no mail fails for it
  garbage = function(m) for i = 1, 100 do local s = string.rep('y', 1e6) end return m:discard() end,
  unhook = function(m) debug.sethook() while true do end end,
  rehook = function(m)
    debug.sethook(coroutine.running(), function() end, 'l', 5)
    local f, mask, count = debug.gethook()
    print('gethook', type(f), mask, count)
    while true do end
  end,
}
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  local case = cases[m.recipients[1]:match('^(.-)@')]
  if case then return case(m) end
  return m:discard()
end)
`;

function residentBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'));
  return Number(match![1]) * 1024;
}

describe('the Lua heap cap', () => {
  let daemon: RunningDaemon;
  let sock: string;
  const mail = (to: string): Buffer => qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'a@b.c', [`${to}@x.y`]);

  before(async () => {
    // the run-time limit far away, so only the heap cap can stop these handlers
    daemon = await startDaemon({ config: CONFIG, env: { QRELAY_LUA_TIME_LIMIT_MS: '60000' } });
    sock = join(daemon.dir, 'qrelay.sock');
  });
  after(async () => {
    assert.equal(await daemon.stop(), 0);
    removeDir(daemon.dir);
  });

  it('stops a handler that allocates without end with Zscript failed, and logs why', async () => {
    assert.equal(await send(sock, mail('ok')), '10:Kdiscarded,');
    const baseline = residentBytes(daemon.child.pid!);
    for (const name of ['grow', 'catch', 'tables', 'grow']) {
      assert.equal(await send(sock, mail(name)), '14:Zscript failed,', name);
      // other mails keep flowing
      assert.equal(await send(sock, mail('ok')), '10:Kdiscarded,');
    }
    await daemon.waitForStderr(new RegExp(`\\[pid=${process.pid} uid=\\d+( mail=[0-9a-f]+)?\\] Lua memory limit of ${CAP_MIB} MiB reached\\n`));
    assert.doesNotMatch(daemon.stderr(), /without pausing/, 'stopped by the cap, not by the run-time limit');
    // WebAssembly memory never shrinks: the cap is what bounds it
    const grown = residentBytes(daemon.child.pid!) - baseline;
    assert.ok(grown < 4 * CAP_MIB * 1024 * 1024, `resident memory grew by ${grown >> 20} MiB`);
  });

  it('fails string.rep beyond the cap at once', async () => {
    assert.equal(await send(sock, mail('huge')), '14:Zscript failed,');
  });

  it('does not fail mails for garbage that a collection frees', async () => {
    for (let i = 0; i < 3; i++) assert.equal(await send(sock, mail('garbage')), '10:Kdiscarded,');
  });
});

describe('the run-time limit', () => {
  it('cannot be switched off with debug.sethook', async () => {
    const daemon = await startDaemon({ config: CONFIG, env: { QRELAY_LUA_TIME_LIMIT_MS: '300' } });
    const sock = join(daemon.dir, 'qrelay.sock');
    const mail = (to: string): Buffer => qmqpRequest('m', 'a@b.c', [`${to}@x.y`]);
    try {
      assert.equal(await send(sock, mail('unhook')), '14:Zscript failed,');
      assert.equal(await send(sock, mail('rehook')), '14:Zscript failed,');
      await daemon.waitForStderr(/Lua code ran for more than 0\.3 s without pausing/);
      // the script sees the hook it set, though qrelay's stays in place
      assert.match(daemon.stdout(), /^gethook\tfunction\tl\t5$/m);
      assert.equal(await send(sock, mail('ok')), '10:Kdiscarded,');
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });
});

describe('lua_memory_limit', () => {
  for (const value of ["'lots'", '1024', '4 * 1024 * 1024 * 1024', '20e6 + 0.5']) {
    it(`refuses ${value} at startup`, async () => {
      const daemon = await startDaemon({
        config: `lua_memory_limit = ${value}\nqmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)`,
        noWait: true,
      });
      try {
        assert.equal(await daemon.exited, 1);
        assert.match(daemon.stderr(), /`lua_memory_limit` must be an integer from 16777216 to 1610612736/);
      } finally {
        removeDir(daemon.dir);
      }
    });
  }
});
