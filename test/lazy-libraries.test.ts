// The libraries behind a global of their own (json, sodium, jwt,
// control_client, socket, pg) are installed only for a config that can
// reach that global (src/lua/library-reach.ts, src/lua/libraries.ts);
// a config that can reach one, directly or through code it loads, gets it
// and uses it as before.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { LuaEngine } from '../src/lua/engine.js';
import { mayReach } from '../src/lua/library-reach.js';

const ALWAYS = ['files', 'cgroup'];

describe('which configs may reach a library', () => {
  const reaches = (text: string): boolean => mayReach(Buffer.from(text, 'latin1'), ['pg']);

  it('those that name it, load other code or reach globals by computed names', () => {
    for (const text of [
      'local db = pg.connect("")',
      'local t = _G["p" .. "g"]',
      'local e = _ENV',
      'local g = getfenv(1)',
      'f = load("return 1")',
      'f = loadstring("return 1")',
      'dofile("other.lua")',
      'f = loadfile("x")',
      'local m = require "x"',
      'module("x", package.seeall)',
      'debug.getregistry()',
      '-- pg in a comment counts too',
      'local s = "pg"',
    ]) {
      assert.equal(reaches(text), true, text);
    }
  });

  it('not those without such a name (words that merely contain one do not count)', () => {
    for (const text of ['qmqp_listen("/run/q.sock", function(m) return m:connect("/run/s.sock") end)', 'local pgx, my_pg, pg2, loader, modules = 1, 2, 3, 4, 5']) {
      assert.equal(reaches(text), false, text);
    }
  });

  it('a precompiled chunk, or a file that could not be read, may', () => {
    assert.equal(mayReach(Buffer.from('\x1bLuaT\x00', 'latin1'), ['pg']), true);
    assert.equal(mayReach(undefined, ['pg']), true);
  });
});

describe('the libraries a config gets', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-lazy-libraries-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  /** Loads `text` as a config; returns the engine's libraries and what the config printed. */
  const load = async (text: string): Promise<{ libraries: readonly string[]; output: string }> => {
    const config = join(dir, `config${n++}.lua`);
    const output = join(dir, `out${n}.txt`);
    writeFileSync(config, `local __out = assert(io.open(${JSON.stringify(output)}, 'w'))\n${text}\n__out:close()\n`);
    const engine = await LuaEngine.load(config, { listen() {} });
    engine.shutdown();
    return { libraries: engine.libraries, output: readFileSync(output, 'latin1') };
  };

  it('a config that names none of them gets only the libraries every config has', async () => {
    assert.deepEqual((await load('__out:write(type(io.open))')).libraries, ALWAYS);
  });

  it('each library for a config that names it, and jwt with the json and sodium it uses', async () => {
    for (const [name, libraries] of [
      ['json', ['json']],
      ['sodium', ['sodium']],
      ['jwt', ['json', 'sodium', 'jwt']],
      ['control_client', ['control_client']],
      ['socket', ['socket']],
      ['pg', ['pg']],
    ] as const) {
      const { libraries: installed, output } = await load(`__out:write(type(${name}))`);
      assert.deepEqual(installed, [...ALWAYS, ...libraries], name);
      assert.equal(output, 'table', name);
    }
  });

  it('every library for a config that can reach globals by computed names, and they work', async () => {
    const { libraries, output } = await load(`local G = getfenv(1)
local key = select(2, G['so' .. 'dium'].crypto_sign_keypair())
__out:write(G['js' .. 'on'].dump({ a = 1 }), ' ', #G['j' .. 'wt'].sign(key, {}, { a = 1 }) > 0 and 'signed' or '')`);
    assert.deepEqual(libraries, [...ALWAYS, 'json', 'sodium', 'jwt', 'control_client', 'socket', 'pg']);
    assert.equal(output, '{"a":1} signed');
  });

  it('a library used only in a file the config runs is there when that file runs', async () => {
    const other = join(dir, 'other.lua');
    writeFileSync(other, 'return json.dump({ x = true })\n');
    const { libraries, output } = await load(`__out:write(dofile(${JSON.stringify(other)}))`);
    assert.ok(libraries.includes('json'));
    assert.equal(output, '{"x":true}');
  });
});
