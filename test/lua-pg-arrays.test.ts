// pg:encode_array and pg:decode_array (docs/pg.md)
// run by the real engine at configuration load.  Results are shown with
// show() (type-exact, strings as hex), errors by their message.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { luaString, runLua } from './helpers/run-lua.js';

/** show() of a Lua array of strings. */
function shown(strings: readonly string[]): string {
  return `{${strings.map((s, i) => `i:${i + 1}=s:${Buffer.from(s, 'latin1').toString('hex')}`).join(',')}}`;
}

/** Runs `expression` for each case and returns what it emitted, one line each. */
async function each(cases: readonly string[], expression: (luaCase: string) => string): Promise<string[]> {
  return runLua(cases.map((c) => `emit(${expression(c)})`).join('\n'));
}

describe('pg:encode_array', () => {
  it('quotes every element and escapes backslash and double quote', async () => {
    const cases: [string, string][] = [
      ["{'foo'}", '{"foo"}'],
      ["{'foo', ''}", '{"foo",""}'],
      ["{'\\\\'}", '{"\\\\"}'],
      ["{'\"'}", '{"\\""}'],
      ['{1, 2.5}', '{"1","2.5"}'],
      ['{}', '{}'],
      ["{'a\"b\\\\c', 'x,y', '{z}', 'NULL'}", '{"a\\"b\\\\c","x,y","{z}","NULL"}'],
      // numbers as the original's Lua 5.1 turns them into strings (%.14g)
      ['{10 / 2, 2^53, 1e15, -0.5}', '{"5","9.007199254741e+15","1e+15","-0.5"}'],
      // a hole inside 1..#t is an empty string
      ["{'a', nil, 'c'}", '{"a","","c"}'],
    ];
    const out = await each(cases.map(([t]) => t), (t) => `pg:encode_array(${t})`);
    assert.deepEqual(out, cases.map(([, expected]) => expected));
  });

  it('keeps bytes as they are', async () => {
    const out = await runLua(`emit(show(pg:encode_array({${luaString(Buffer.from([0, 0xff, 0x22, 0x0a]))}})))`);
    assert.deepEqual(out, [`s:${Buffer.from('{"\0\xff\\"\n"}', 'latin1').toString('hex')}`]);
  });

  it('raises Lua errors with the real texts', async () => {
    const cases: [string, string][] = [
      ['{x = 1}', 'Key is not a number'],
      ["{['1x'] = 'a'}", 'Key is not a number'],
      // a numeric string passes as a number (here outside 1..#t)
      ["{['1'] = 'a'}", 'Key out of range'],
      ["{[true] = 'x'}", 'Key is not a number'],
      ["{[0] = 'a'}", 'Key out of range'],
      ["(function() local t = {'a'}; t[3] = 'c'; return t end)()", 'Key out of range'],
      ['{true}', 'Bad value'],
      ['{{}}', 'Bad value'],
      ["'x'", "bad argument #1 to 'encode_array' (Table expected)"],
      ['nil', "bad argument #1 to 'encode_array' (Table expected)"],
      ['{}, 1', 'Too many parameters'],
    ];
    const out = await each(cases.map(([t]) => t), (t) => `pcall_text(pg.encode_array, pg, ${t})`);
    assert.deepEqual(out, cases.map(([, message]) => message));
    assert.deepEqual(await runLua('emit(pcall_text(pg.encode_array, pg))'), ["bad argument #1 to 'encode_array' (Table expected)"]);
  });

  it('reports element errors at the calling line of the script', async () => {
    const [message] = await runLua("emit(pcall_text(function()\n  local _ = pg:encode_array({ x = 1 })\nend))");
    assert.match(message!, /\/config\.lua:\d+: Key is not a number$/);
  });
});

describe('pg:decode_array', () => {
  it('decodes quoted, unquoted, empty and escaped elements', async () => {
    const cases: [string, string[]][] = [
      ['{}', []],
      ['{""}', ['']],
      ['{foo}', ['foo']],
      ['{"foo"}', ['foo']],
      ['{foo,bar}', ['foo', 'bar']],
      ['{foo,"bar"}', ['foo', 'bar']],
      ['{foo,,bar}', ['foo', '', 'bar']],
      ['{foo,"\\"\\\\"}', ['foo', '"\\']],
      ['{,}', ['', '']],
      ['', []],
      // unquoted: no unescaping, no trimming, NULL is a string
      ['{ a b , c\\d ,NULL,"NULL"}', [' a b ', ' c\\d ', 'NULL', 'NULL']],
      // the original's unquoted scan runs to the next comma anywhere
      ['{a}b,c}', ['a}b', 'c']],
      ['{"a,b}","{c}"}', ['a,b}', '{c}']],
    ];
    const out = await each(cases.map(([s]) => s), (s) => `show(pg:decode_array(${luaString(s)}))`);
    assert.deepEqual(out, cases.map(([, strings]) => shown(strings)));
  });

  it('keeps bytes as they are and takes numbers as strings', async () => {
    const out = await runLua(`emit(show(pg:decode_array(${luaString(Buffer.from('{"\0\xff",\x01}', 'latin1'))})))\nemit(pcall_text(pg.decode_array, pg, 5))`);
    assert.deepEqual(out, [shown(['\0\xff', '\x01']), "'{' expected"]);
  });

  it('raises Lua errors with the real texts', async () => {
    const cases: [string, string][] = [
      ['x', "'{' expected"],
      [' {}', "'{' expected"],
      ['{"abc', 'missing closing double quote'],
      ['{"ab\\', 'backslash at end of string'],
      ['{"a"b}', "'}' or ',' expected"],
      ['{"a"', "'}' or ',' expected"],
      ['{{a}}', "unexpected '{'"],
      ['{a,{b}}', "unexpected '{'"],
      ['{a', "missing '}'"],
      ['{', "missing '}'"],
      ['{a}x', "garbage after '}'"],
      ['{"a"}x', "garbage after '}'"],
      ['{}x', "garbage after '}'"],
    ];
    const out = await each(cases.map(([s]) => s), (s) => `pcall_text(pg.decode_array, pg, ${luaString(s)})`);
    assert.deepEqual(out, cases.map(([, message]) => message));
    const args = await runLua("emit(pcall_text(pg.decode_array, pg))\nemit(pcall_text(pg.decode_array, pg, {}))\nemit(pcall_text(pg.decode_array, pg, '{}', 1))");
    assert.deepEqual(args, [
      "bad argument #1 to 'decode_array' (string expected, got no value)",
      "bad argument #1 to 'decode_array' (string expected, got table)",
      'Too many parameters',
    ]);
  });

  it('reads back what encode_array wrote', async () => {
    const strings = ['', 'plain', 'with "quotes"', 'back\\slash', '{braces}', 'a,b', 'NULL', ' spaced '];
    const table = `{${strings.map((s) => luaString(s)).join(', ')}}`;
    const out = await runLua(`emit(show(pg:decode_array(pg:encode_array(${table}))))`);
    assert.deepEqual(out, [shown(strings)]);
  });
});
