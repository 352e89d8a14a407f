// JavaScript side of the `json` library: a strict RFC 8259 reader over a Lua
// byte string.  It does not build Lua tables (deep nesting would overflow
// the Lua C stack of a bridged call); it returns a flat event list that
// json.lua turns into tables iteratively.
import type { LuaLibrary } from '../library.js';
import type { LuaPushable } from '../lua-values.js';

/** Event bytes, one per JSON token (json.lua reads the same letters). */
const OPEN_OBJECT = '{';
const OPEN_ARRAY = '[';
const CLOSE = ')';
const KEY = 'k';
const VALUE = 'v';
const NULL = 'z';

export interface JsonEvents {
  /** One event letter per token; `k` and `v` take the next entry of `values`. */
  readonly events: string;
  readonly values: (string | number | boolean)[];
}

/** A parse failure; the message imitates the original's JSON library. */
export class JsonSyntaxError extends Error {}

const NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const PLAIN_STRING_RUN = /[^"\\\u0000-\u001f\u0080-\u00ff]*/y;
const ESCAPED: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
const TWO_TO_63 = 2n ** 63n;
const TWO_TO_64 = 2n ** 64n;

/** The original's integers: int64 or uint64 (shown wrapped to int64), else a double. */
function integerValue(token: string): number {
  if (token.length <= 15) return Number(token);
  const big = BigInt(token);
  if (big < -TWO_TO_63 || big >= TWO_TO_64) return Number(token);
  return Number(BigInt.asIntN(64, big));
}

/** Bytes (one char each) of code point `cp` in UTF-8. */
function utf8Chars(cp: number): string {
  if (cp < 0x80) return String.fromCharCode(cp);
  if (cp < 0x800) return String.fromCharCode(0xc0 | (cp >> 6), 0x80 | (cp & 0x3f));
  if (cp < 0x10000) return String.fromCharCode(0xe0 | (cp >> 12), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
  return String.fromCharCode(0xf0 | (cp >> 18), 0x80 | ((cp >> 12) & 0x3f), 0x80 | ((cp >> 6) & 0x3f), 0x80 | (cp & 0x3f));
}

/** Length of the well-formed UTF-8 sequence at `at` (Unicode table 3-7), or 0. */
function utf8SequenceLength(text: string, at: number): number {
  const b0 = text.charCodeAt(at);
  const inRange = (offset: number, low: number, high: number): boolean => {
    const b = text.charCodeAt(at + offset);
    return b >= low && b <= high;
  };
  if (b0 >= 0xc2 && b0 <= 0xdf) return inRange(1, 0x80, 0xbf) ? 2 : 0;
  if (b0 >= 0xe0 && b0 <= 0xef) {
    const low = b0 === 0xe0 ? 0xa0 : 0x80;
    const high = b0 === 0xed ? 0x9f : 0xbf;
    return inRange(1, low, high) && inRange(2, 0x80, 0xbf) ? 3 : 0;
  }
  if (b0 >= 0xf0 && b0 <= 0xf4) {
    const low = b0 === 0xf0 ? 0x90 : 0x80;
    const high = b0 === 0xf4 ? 0x8f : 0xbf;
    return inRange(1, low, high) && inRange(2, 0x80, 0xbf) && inRange(3, 0x80, 0xbf) ? 4 : 0;
  }
  return 0;
}

class Reader {
  private pos = 0;
  private events = '';
  private readonly values: (string | number | boolean)[] = [];
  /** Open containers: `{` or `[`. */
  private readonly open: string[] = [];

  constructor(
    private readonly text: string,
    private readonly maxDepth: number,
  ) {
    if (text.startsWith('\u00ef\u00bb\u00bf')) this.pos = 3; // a UTF-8 BOM is skipped, as the original does
  }

  private fail(what: string, at = this.pos): never {
    let line = 1;
    let lineStart = 0;
    for (let i = 0; i < at && i < this.text.length; i++) {
      if (this.text.charCodeAt(i) === 0x0a) {
        line++;
        lineStart = i + 1;
      }
    }
    throw new JsonSyntaxError(`[json.exception.parse_error.101] parse error at line ${line}, column ${at - lineStart + 1}: syntax error while parsing value - ${what}`);
  }

  private skipWhitespace(): void {
    const t = this.text;
    let c = t.charCodeAt(this.pos);
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = t.charCodeAt(++this.pos);
  }

  private expect(ch: string, what: string): void {
    this.skipWhitespace();
    if (this.text[this.pos] !== ch) this.fail(this.pos >= this.text.length ? `unexpected end of input; expected ${what}` : `unexpected character; expected ${what}`);
    this.pos++;
  }

  read(): JsonEvents {
    this.skipWhitespace();
    if (this.pos >= this.text.length) this.fail('attempting to parse an empty input');
    for (;;) {
      if (this.value()) continue;
      let next: 'value' | 'closed' | 'end';
      do next = this.afterValue();
      while (next === 'closed');
      if (next === 'end') break;
    }
    this.skipWhitespace();
    if (this.pos < this.text.length) this.fail('unexpected character; expected end of input');
    return { events: this.events, values: this.values };
  }

  /** Reads one value; true if it opened a container whose first value follows. */
  private value(): boolean {
    this.skipWhitespace();
    const c = this.text[this.pos];
    switch (c) {
      case '{':
      case '[':
        if (this.open.length >= this.maxDepth) this.fail('JSON nesting too deep');
        this.pos++;
        this.open.push(c);
        this.events += c === '{' ? OPEN_OBJECT : OPEN_ARRAY;
        this.skipWhitespace();
        if (this.text[this.pos] === (c === '{' ? '}' : ']')) {
          this.pos++;
          this.open.pop();
          this.events += CLOSE;
          return false;
        }
        if (c === '{') this.member();
        return true;
      case '"':
        this.events += VALUE;
        this.values.push(this.string());
        return false;
      case 't':
        this.literal('true', true);
        return false;
      case 'f':
        this.literal('false', false);
        return false;
      case 'n':
        this.literal('null', undefined);
        return false;
      case undefined:
        return this.fail('unexpected end of input; expected value');
      default:
        this.number();
        return false;
    }
  }

  /** Key and colon of an object member; the value follows. */
  private member(): void {
    this.skipWhitespace();
    if (this.text[this.pos] !== '"') this.fail('unexpected character; expected string literal');
    this.events += KEY;
    this.values.push(this.string());
    this.expect(':', "':'");
  }

  /** After a value: a comma (another value follows), a closing bracket, or the end. */
  private afterValue(): 'value' | 'closed' | 'end' {
    const top = this.open[this.open.length - 1];
    if (top === undefined) return 'end';
    this.skipWhitespace();
    const c = this.text[this.pos];
    if (c === ',') {
      this.pos++;
      if (top === '{') this.member();
      return 'value';
    }
    if (c === (top === '{' ? '}' : ']')) {
      this.pos++;
      this.open.pop();
      this.events += CLOSE;
      return 'closed';
    }
    return this.fail(c === undefined ? 'unexpected end of input' : `unexpected character; expected ',' or '${top === '{' ? '}' : ']'}'`);
  }

  private literal(word: string, v: boolean | undefined): void {
    if (!this.text.startsWith(word, this.pos)) this.fail(`invalid literal; last read: '${this.text.slice(this.pos, this.pos + word.length)}'`);
    this.pos += word.length;
    if (v === undefined) {
      this.events += NULL;
    } else {
      this.events += VALUE;
      this.values.push(v);
    }
  }

  private number(): void {
    NUMBER.lastIndex = this.pos;
    const m = NUMBER.exec(this.text);
    if (m === null) this.fail('invalid literal');
    const token = m[0];
    this.pos += token.length;
    this.events += VALUE;
    this.values.push(/[.eE]/.test(token) ? Number(token) : integerValue(token));
  }

  /** A string literal at `pos` (the opening quote) as bytes, one char each. */
  private string(): string {
    const t = this.text;
    let out = '';
    this.pos++;
    for (;;) {
      PLAIN_STRING_RUN.lastIndex = this.pos;
      const run = PLAIN_STRING_RUN.exec(t)![0];
      out += run;
      this.pos += run.length;
      const c = t.charCodeAt(this.pos);
      if (c === 0x22) {
        this.pos++;
        return out;
      }
      if (Number.isNaN(c)) this.fail('invalid string: missing closing quote');
      if (c < 0x20) this.fail('invalid string: control character must be escaped');
      if (c >= 0x80) {
        const n = utf8SequenceLength(t, this.pos);
        if (n === 0) this.fail('invalid string: ill-formed UTF-8 byte');
        out += t.slice(this.pos, this.pos + n);
        this.pos += n;
        continue;
      }
      out += this.escape();
    }
  }

  /** The escape sequence at `pos` (a backslash) as bytes. */
  private escape(): string {
    const letter = this.text[this.pos + 1];
    if (letter !== 'u') {
      const plain = letter === undefined ? undefined : ESCAPED[letter];
      if (plain === undefined) this.fail('invalid string: forbidden character after backslash');
      this.pos += 2;
      return plain;
    }
    const high = this.hex4(this.pos + 2);
    this.pos += 6;
    if (high >= 0xdc00 && high <= 0xdfff) this.fail('invalid string: surrogate U+DC00..U+DFFF must follow U+D800..U+DBFF');
    if (high < 0xd800 || high > 0xdbff) return utf8Chars(high);
    if (this.text[this.pos] !== '\\' || this.text[this.pos + 1] !== 'u') this.fail('invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF');
    const low = this.hex4(this.pos + 2);
    if (low < 0xdc00 || low > 0xdfff) this.fail('invalid string: surrogate U+D800..U+DBFF must be followed by U+DC00..U+DFFF');
    this.pos += 6;
    return utf8Chars(0x10000 + ((high - 0xd800) << 10) + (low - 0xdc00));
  }

  private hex4(at: number): number {
    const digits = this.text.slice(at, at + 4);
    if (!/^[0-9a-fA-F]{4}$/.test(digits)) this.fail("invalid string: '\\u' must be followed by 4 hex digits", at);
    return parseInt(digits, 16);
  }
}

/** Reads `text` (bytes, one char each); throws JsonSyntaxError. */
export function readJsonEvents(text: string, maxDepth: number): JsonEvents {
  return new Reader(text, maxDepth).read();
}

export const jsonLibrary: LuaLibrary = {
  name: 'json',
  primitives: () => ({
    // events, values — or nil, message
    parse: ([text, maxDepth]): LuaPushable[] => {
      try {
        const { events, values } = readJsonEvents(String(text), Number(maxDepth));
        return [events, values];
      } catch (e) {
        if (e instanceof JsonSyntaxError) return [undefined, e.message];
        throw e;
      }
    },
  }),
};
