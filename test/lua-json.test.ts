// The `json` library (docs/libraries.md) run by the real engine.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { luaString, runLua } from './helpers/run-lua.js';

describe('json.dump', () => {
  it('converts every Lua type as the original does', async () => {
    const cases: [string, string][] = [
      ['nil', 'null'],
      ['true', 'true'],
      ['false', 'false'],
      ['42', '42'],
      ['3.7', '3'],
      ['-2.5', '-2'],
      ['-0.9', '0'],
      ['2^53', '9007199254740992'],
      ['1e300', '-9223372036854775808'],
      ['"plain"', '"plain"'],
      ['""', '""'],
      [luaString('"\\/\b\f\n\r\t\x00\x01\x1f\x7f'), '"\\"\\\\/\\b\\f\\n\\r\\t\\u0000\\u0001\\u001f\x7f"'],
      [luaString('caf\xc3\xa9 \xf0\x9f\x98\x80'), '"caf\xc3\xa9 \xf0\x9f\x98\x80"'],
      ['{y="z", x=42}', '{"x":42,"y":"z"}'],
      ['{1, 2}', '{"1":1,"2":2}'],
      ['{}', '{}'],
      ['{[1.5]=1, [1e15]=2, [-3]=3}', '{"-3":3,"1.5":1,"1e+15":2}'],
      ['{a={b={c={}}}, n=nil}', '{"a":{"b":{"c":{}}}}'],
      ['{[true]="b"}', '{"":"b"}'],
      // bytewise order: upper case, lower case, then bytes >= 0x80; a prefix first
      ['{["\\195\\169"]=1, a=2, B=3, ["a\\0"]=4, [""]=5}', '{"":5,"B":3,"a":2,"a\\u0000":4,"\xc3\xa9":1}'],
      ['{10, 20, [10]=30}', '{"1":10,"10":30,"2":20}'],
    ];
    const code = cases.map(([lua]) => `emit(json.dump(${lua}))`).join('\n');
    const lines = await runLua(code);
    assert.deepEqual(lines, cases.map(([, json]) => json));
  });

  it('shows functions, userdata and threads as pointers', async () => {
    const lines = await runLua(`
      emit(json.dump(string.len))
      emit(json.dump(function() end))
      emit(json.dump(coroutine.create(print)))
      emit(json.dump(control_resolve('127.0.0.1')))
      emit(json.dump({f = string.len}))
    `);
    assert.match(lines[0]!, /^"cfunction:0x[0-9a-f]+"$/);
    assert.equal(lines[1], '"cfunction:(nil)"');
    assert.match(lines[2]!, /^"thread:0x[0-9a-f]+"$/);
    assert.match(lines[3]!, /^"userdata:0x[0-9a-f]+"$/);
    assert.match(lines[4]!, /^\{"f":"cfunction:0x[0-9a-f]+"\}$/);
  });

  it('raises errors for argument counts, invalid UTF-8 and runaway nesting', async () => {
    const lines = await runLua(`
      emit(pcall_text(json.dump))
      emit(pcall_text(json.dump, 1, 2))
      emit(pcall_text(function() json.dump() end))
      emit(pcall_text(json.dump, "\\255"))
      emit(pcall_text(json.dump, {["\\192\\128"] = 1}))
      emit(pcall_text(json.dump, "\\237\\160\\128"))
      local t = {}
      t.self = t
      emit(pcall_text(json.dump, t))
      local deep = {}
      for i = 1, 999 do deep = {deep} end
      emit(#json.dump(deep))
      emit(pcall_text(json.dump, {deep}))
      emit(json.dump({still = "working"}))
    `);
    assert.deepEqual(lines.slice(0, 2), ['Not enough parameters', 'Too many parameters']);
    assert.match(lines[2]!, /^.*config\.lua:\d+: Not enough parameters$/);
    assert.deepEqual(lines.slice(3, 7), ['C++ exception', 'C++ exception', 'C++ exception', 'JSON nesting too deep']);
    assert.equal(lines[7], String(1000 * 2 + 999 * 4));
    assert.equal(lines[8], 'JSON nesting too deep');
    assert.equal(lines[9], '{"still":"working"}');
  });
});

describe('json.parse', () => {
  it('maps JSON values to Lua values', async () => {
    const cases: [string, string][] = [
      ['null', 'nil'],
      ['true', 'true'],
      [' false ', 'false'],
      ['42', 'i:42'],
      ['-0', 'i:0'],
      ['1.5', 'f:1.5'],
      ['-1.25e2', 'i:-125'],
      ['1e400', 'f:inf'],
      ['9007199254740993', 'f:9007199254740992'],
      ['18446744073709551615', 'i:-1'],
      ['9223372036854775808', 'f:-9.2233720368547758e+18'],
      ['123456789012345678901234567890', 'f:1.2345678901234568e+29'],
      ['"a\\u0000b\\"\\\\\\/\\b\\f\\n\\r\\t"', 's:610062225c2f080c0a0d09'],
      ['"\\u00e9\\ud83d\\ude00\\uFFFF"', 's:c3a9f09f9880efbfbf'],
      ['"\xc3\xa9"', 's:c3a9'],
      ['[]', '{}'],
      ['{}', '{}'],
      ['[1,null,3]', '{i:1=i:1,i:3=i:3}'],
      ['[null]', '{}'],
      ['{"a":1,"b":null}', '{s:61=i:1}'],
      ['{"a":1,"a":2}', '{s:61=i:2}'],
      ['{"a":1,"a":null}', '{}'],
      ['{"1":"x"}', '{s:31=s:78}'],
      ['{"a":[{"b":[]}]}', '{s:61={i:1={s:62={}}}}'],
      ['\xef\xbb\xbf[1]', '{i:1=i:1}'],
      [' \t\r\n[ 1 , 2 ]\n', '{i:1=i:1,i:2=i:2}'],
    ];
    const code = cases.map(([text]) => `emit(show(json.parse(${luaString(text)})))`).join('\n');
    assert.deepEqual(await runLua(code), cases.map(([, shown]) => shown));
  });

  it('returns nil and a message for everything that is not strict JSON', async () => {
    const invalid = [
      '', ' ', '[1,]', '{"a":1,}', '// c\n1', '/* c */ 1', '1 2', "'a'", '01', '1.', '.5', '+1', '-', '1e', 'NaN', 'Infinity',
      '"\x01"', '"\xff"', '"\xc0\x80"', '"\xed\xa0\x80"', '"\\ud800"', '"\\udc00"', '"\\ud800\\u0041"', '"\\x"', '"\\u12"', '"abc',
      'tru', 'nul', '[', ']', '{"a" 1}', '{1:2}', '{"a":}', '[1 2]', '{"a":1 "b":2}', '\x00', '[1]\x00', '"a"\n"b"',
      '['.repeat(1001) + ']'.repeat(1001),
    ];
    const code = invalid.map((text) => `do local v, msg = json.parse(${luaString(text)}) emit(select('#', json.parse(${luaString(text)})), v, type(msg)) end`).join('\n');
    const lines = await runLua(code);
    assert.equal(lines.length, invalid.length);
    lines.forEach((line, i) => assert.equal(line, '2\tnil\tstring', `input ${JSON.stringify(invalid[i])}`));
  });

  it('accepts nesting up to 1000 levels', async () => {
    const [depth] = await runLua(`
      local v = json.parse(${luaString('['.repeat(1000) + ']'.repeat(1000))})
      local n = 0
      while type(v) == 'table' and n < 2000 do n = n + 1 v = v[1] end
      emit(n)
    `);
    assert.equal(depth, '1000');
  });

  it('reports the position in its message', async () => {
    const [message] = await runLua(`emit(select(2, json.parse('[1,\\n tru]')))`);
    assert.match(message!, /^\[json\.exception\.parse_error\.101\] parse error at line 2, column 2: /);
  });

  it('checks its argument', async () => {
    const lines = await runLua(`
      emit(pcall_text(json.parse))
      emit(pcall_text(json.parse, '1', '2'))
      emit(pcall_text(json.parse, {}))
      emit(pcall_text(json.parse, nil))
      emit(show(json.parse(42)))
    `);
    assert.deepEqual(lines, [
      'Not enough parameters',
      'Too many parameters',
      "bad argument #1 to 'parse' (string expected, got table)",
      "bad argument #1 to 'parse' (string expected, got nil)",
      'i:42',
    ]);
  });

  it('round-trips what dump produces', async () => {
    const [shown] = await runLua(`emit(show(json.parse(json.dump({1, "x", {a = true, b = {}}, [5] = -7.9}))))`);
    assert.equal(shown, '{s:31=i:1,s:32=s:78,s:33={s:61=true,s:62={}},s:35=i:-7}');
  });
});
