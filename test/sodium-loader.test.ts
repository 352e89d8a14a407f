// libsodium is loaded only for configs that can reach the sodium or jwt
// library (src/lua/libs/sodium-loader.ts); configs that can, including
// through other files, work as before.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { libsodiumLoaded, mayUseLibsodium } from '../src/lua/libs/sodium-loader.js';
import { runLua } from './helpers/run-lua.js';

const reaches = (text: string): boolean => mayUseLibsodium(Buffer.from(text, 'latin1'));

describe('which configs may use libsodium', () => {
  it('those that name the libraries, load other code or reach globals by computed names', () => {
    for (const text of [
      'local s = sodium.randombytes(8)',
      'x = jwt.sign(k, {}, {})',
      'local t = _G["so" .. "dium"]',
      'local e = _ENV',
      'f = load("return 1")',
      'dofile("other.lua")',
      'f = loadfile("x")',
      'local m = require "x"',
      'local p = package.loaded',
      'debug.getregistry()',
      '-- sodium in a comment counts too',
    ]) {
      assert.equal(reaches(text), true, text);
    }
  });

  it('not those without such a name (words that merely contain one do not count)', () => {
    for (const text of [
      'qmqp_listen("/run/q.sock", function(m) m:insert_header("X-A", "b") return m:connect("/run/s.sock") end)',
      'function reload() payload = downloaded end',
      'local sodiumx, xjwt, my_G, loader = 1, 2, 3, 4',
    ]) {
      assert.equal(reaches(text), false, text);
    }
  });

  it('a precompiled chunk, or a file that could not be read, may', () => {
    assert.equal(mayUseLibsodium(Buffer.from('\x1bLuaT\x00', 'latin1')), true);
    assert.equal(mayUseLibsodium(undefined), true);
  });
});

describe('loading', () => {
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-sodium-loader-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('a config that cannot reach it runs without loading libsodium', async () => {
    assert.deepEqual(await runLua('emit(string.rep("x", 3))'), ['xxx']);
    assert.equal(libsodiumLoaded(), false);
  });

  it('a config that uses it only in a file it runs gets it at load time', async () => {
    writeFileSync(join(dir, 'keys.lua'), 'emit(#sodium.crypto_sign_keypair(), #jwt.sign(select(2, sodium.crypto_sign_keypair()), {}, {}) > 0)\n');
    assert.deepEqual(await runLua('dofile("keys.lua")', { dir }), ['32\ttrue']);
    assert.equal(libsodiumLoaded(), true);
  });
});
