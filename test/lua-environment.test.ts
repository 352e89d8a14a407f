// The script's global environment where WebAssembly differs from a native
// Lua (docs/configuration.md, "The Lua environment").
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runLua } from './helpers/run-lua.js';

describe('programs cannot be started from Lua', () => {
  it('os.execute() says there is no shell; os.execute(cmd) raises an error pcall catches, and Lua goes on', async () => {
    const out = await runLua(`
      emit(os.execute())
      emit(pcall_text(os.execute, 'true'))
      local ok = pcall(os.execute, 'true')
      emit(ok, 'still running')
    `);
    assert.deepEqual(out, ['false', "'os.execute' not supported", 'false\tstill running']);
  });
  it("io.popen raises 'popen' not supported, which pcall catches", async () => {
    const out = await runLua(`emit(pcall_text(io.popen, 'true')) emit('after')`);
    assert.deepEqual(out, ["'popen' not supported", 'after']);
  });
});
