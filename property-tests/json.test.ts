// Properties of the `json` library (docs/libraries.md) and of sodium.hex2bin,
// each case run by the real Lua engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { luaString, runLua } from '../test/helpers/run-lua.js';

const RUNS = { numRuns: 100 };

/** A value Lua can hold that json.dump keeps: booleans, integers, UTF-8 strings, tables. */
type LuaValue = boolean | number | string | readonly LuaValue[] | { readonly [key: string]: LuaValue };

const luaValue: fc.Arbitrary<LuaValue> = fc.letrec<{ value: LuaValue }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.boolean(),
    fc.maxSafeInteger(),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ unit: 'grapheme', maxLength: 8 }), tie('value'), { maxKeys: 5 }),
  ),
})).value;

function luaNumber(n: number): string {
  // a non-integer or unsafe double must stay a float on the Lua side
  return Number.isSafeInteger(n) ? String(n) : `(${JSON.stringify(n)} * 1.0)`;
}

/** Lua source for `v`; `asObject` writes arrays as tables with string keys (what JSON gives back). */
function luaSource(v: LuaValue, asObject: boolean): string {
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') return luaNumber(v);
  if (typeof v === 'string') return luaString(Buffer.from(v, 'utf8'));
  if (Array.isArray(v)) {
    const items = (v as readonly LuaValue[]).map((item, i) => `[${asObject ? `"${i + 1}"` : i + 1}]=${luaSource(item, asObject)}`);
    return `{${items.join(',')}}`;
  }
  const entries = Object.entries(v as { [key: string]: LuaValue }).map(([key, item]) => `[${luaString(Buffer.from(key, 'utf8'))}]=${luaSource(item, asObject)}`);
  return `{${entries.join(',')}}`;
}

/** What json.parse must return for what JSON.parse read: null is nil, uint64 above 2^63 wraps. */
function expectedSource(v: unknown): string {
  if (v === null) return 'nil';
  if (typeof v === 'boolean') return String(v);
  if (typeof v === 'number') {
    const wraps = Number.isInteger(v) && v >= 2 ** 63 && v < 2 ** 64;
    return luaNumber(wraps ? v - 2 ** 64 : v);
  }
  if (typeof v === 'string') return luaString(Buffer.from(v, 'utf8'));
  if (Array.isArray(v)) return `{${v.map((item, i) => (item === null ? '' : `[${i + 1}]=${expectedSource(item)},`)).join('')}}`;
  const entries = Object.entries(v as Record<string, unknown>).filter(([, item]) => item !== null);
  return `{${entries.map(([key, item]) => `[${luaString(Buffer.from(key, 'utf8'))}]=${expectedSource(item)}`).join(',')}}`;
}

describe('json properties', () => {
  it('json.parse(json.dump(v)) gives v back, arrays as objects with string keys', async () => {
    await fc.assert(
      fc.asyncProperty(luaValue, async (v) => {
        const lines = await runLua(`
          local back = json.parse(json.dump(${luaSource(v, false)}))
          emit(show(back))
          emit(show(${luaSource(v, true)}))
        `);
        assert.equal(lines[0], lines[1]);
      }),
      RUNS,
    );
  });

  it('json.dump truncates numbers toward zero', async () => {
    await fc.assert(
      fc.asyncProperty(fc.double({ min: -(2 ** 52), max: 2 ** 52, noNaN: true }), async (x) => {
        const [dumped] = await runLua(`emit(json.dump(${luaNumber(x)}))`);
        assert.equal(dumped, String(Math.trunc(x) === 0 ? 0 : Math.trunc(x)));
      }),
      RUNS,
    );
  });

  it('json.parse reads what JSON.parse reads, with the mapping of docs/libraries.md', async () => {
    await fc.assert(
      fc.asyncProperty(fc.json({ stringUnit: 'grapheme', maxDepth: 4 }), async (text) => {
        const lines = await runLua(`
          emit(show(json.parse(${luaString(Buffer.from(text, 'utf8'))})))
          emit(show(${expectedSource(JSON.parse(text))}))
        `);
        assert.equal(lines[0], lines[1], text);
      }),
      RUNS,
    );
  });

  it('json.parse ends in a value or nil and a message for any bytes, never a raised error', async () => {
    const jsonLike = fc
      .tuple(fc.json({ maxDepth: 3 }), fc.nat(), fc.constantFrom('', ',', ']', '}', '"', '\\', '\x00', '\xff', 'e', '-', ' '))
      .map(([text, at, junk]) => Buffer.from(text.slice(0, at % (text.length + 1)) + junk + text.slice(at % (text.length + 1)), 'latin1'));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 60 }).map((b) => Buffer.from(b)), jsonLike), async (bytes) => {
        const [outcome] = await runLua(`
          local results = table.pack(pcall(json.parse, ${luaString(bytes)}))
          if not results[1] then emit('raised', results[2])
          elseif results.n == 3 then emit(results[2] == nil and type(results[3]) == 'string' and 'failed' or 'bad failure')
          elseif results.n == 2 then emit('value')
          else emit('bad count', results.n) end
        `);
        assert.ok(outcome === 'value' || outcome === 'failed', `${bytes.toString('hex')}: ${outcome}`);
      }),
      RUNS,
    );
  });

  it('sodium.hex2bin decodes hex and answers anything else with nothing', async () => {
    const hexText = fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('hex'));
    const mixedCase = hexText.map((h) => [...h].map((c, i) => (i % 3 === 0 ? c.toUpperCase() : c)).join(''));
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString('latin1')), hexText, mixedCase), async (text) => {
        const [outcome] = await runLua(`
          local results = table.pack(pcall(sodium.hex2bin, ${luaString(text)}))
          if not results[1] then emit('raised', results[2])
          elseif results.n == 1 then emit('nothing')
          else emit('hex', sodium.bin2hex(results[2])) end
        `);
        const valid = /^(?:[0-9a-fA-F]{2})*$/.test(text);
        assert.equal(outcome, valid ? `hex\t${text.toLowerCase()}` : 'nothing');
      }),
      RUNS,
    );
  });
});
