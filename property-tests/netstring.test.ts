// Properties of the netstring reader (outer framing, docs/protocol.md) and the
// inner field parser (docs/protocol.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { encodeNetstring, parseInnerNetstring } from '../src/protocol/netstring.js';
import { NetstringReader, type NetstringReadResult } from '../src/protocol/netstring-reader.js';

/** A result with its payload as one Buffer (the reader keeps the received chunks). */
type FlatResult = Exclude<NetstringReadResult, { kind: 'complete' }> | { kind: 'complete'; payload: Buffer; unread: Buffer };

function flat(result: NetstringReadResult | undefined): FlatResult | undefined {
  return result?.kind === 'complete' ? { ...result, payload: Buffer.concat(result.payload.pieces) } : result;
}

/** Feeds `bytes` split at `cuts` and returns the first result (or undefined). */
function readChunked(bytes: Buffer, cuts: number[], max: number): FlatResult | undefined {
  return flat(readChunkedRaw(bytes, cuts, max));
}

function readChunkedRaw(bytes: Buffer, cuts: number[], max: number): NetstringReadResult | undefined {
  const reader = new NetstringReader(max);
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  let start = 0;
  for (const end of [...points, bytes.length]) {
    if (end <= start) continue;
    const result = reader.push(bytes.subarray(start, end));
    if (result !== undefined) return result;
    start = end;
  }
  return undefined;
}

const KINDS = new Set(['complete', 'malformed', 'too-large', 'garbage']);

describe('netstring reader', () => {
  it('decodes what the encoder produced, however the bytes are split', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 10 }), (payload, cuts) => {
        const result = readChunked(encodeNetstring(Buffer.from(payload)), cuts, 1024);
        assert.equal(result?.kind, 'complete');
        if (result?.kind === 'complete') assert.deepEqual(result.payload, Buffer.from(payload));
      }),
    );
  });

  it('gives the same result for every chunking of arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.array(fc.nat(100), { maxLength: 8 }), (bytes, cuts) => {
        // the first read may take up to 32 header bytes: compare against
        // chunkings that keep the header read whole, as the original sees it
        const buffer = Buffer.from(bytes);
        const whole = readChunked(buffer, [], 40);
        const split = readChunked(buffer, cuts.map((c) => 32 + c), 40);
        assert.deepEqual(split, whole);
      }),
    );
  });

  it('never throws and always yields one of the named results or waits for more', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.array(fc.nat(250), { maxLength: 8 }), fc.integer({ min: 0, max: 300 }), (bytes, cuts, max) => {
        const result = readChunked(Buffer.from(bytes), cuts, max);
        if (result !== undefined) assert.ok(KINDS.has(result.kind));
      }),
    );
  });

  it('accepts leading zeros in the outer length', () => {
    const r = readChunked(Buffer.from('0007:abcdefg,'), [], 100);
    assert.deepEqual(r, { kind: 'complete', payload: Buffer.from('abcdefg'), unread: Buffer.alloc(0) });
  });

  it('reads a zero-length request', () => {
    assert.equal(readChunked(Buffer.from('0:,'), [], 100)?.kind, 'complete');
  });

  it('accepts partial reads', () => {
    const reader = new NetstringReader(100);
    const parts = ['1', '6', ':', '0123', '456789abcd', 'ef'];
    for (const p of parts) assert.equal(reader.push(Buffer.from(p)), undefined);
    const r = reader.push(Buffer.from(','));
    assert.equal(r?.kind, 'complete');
    if (r?.kind === 'complete') assert.equal(Buffer.concat(r.payload.pieces).toString(), '0123456789abcdef');
  });

  it('enforces the maximum length', () => {
    assert.equal(readChunked(Buffer.from('5:abcde,'), [], 5)?.kind, 'complete');
    assert.deepEqual(readChunked(Buffer.from('6:abcdef,'), [], 5), { kind: 'too-large', length: 6n });
  });

  it('refuses 32 digits, u64 overflow, signs and garbage', () => {
    assert.equal(readChunked(Buffer.from('0'.repeat(30) + '1:x,'), [], 100)?.kind, 'complete');
    assert.equal(readChunked(Buffer.from('0'.repeat(31) + '1:x,'), [], 100)?.kind, 'malformed');
    assert.equal(readChunked(Buffer.from('0'.repeat(32)), [], 100)?.kind, 'malformed');
    assert.equal(readChunked(Buffer.from('18446744073709551616'), [], 100)?.kind, 'malformed');
    assert.equal(readChunked(Buffer.from('18446744073709551615'), [], 100), undefined);
    assert.equal(readChunked(Buffer.from('+1:x,'), [], 100)?.kind, 'malformed');
    assert.equal(readChunked(Buffer.from('1;x,'), [], 100)?.kind, 'malformed');
    assert.equal(readChunked(Buffer.from('3:Kok,\n'), [], 256)?.kind, 'garbage');
    assert.equal(readChunked(Buffer.from('3:Kok;'), [], 256)?.kind, 'malformed');
  });

  it('keeps chunks that continue each other in memory as one view of them, others as pieces of their own, never copying', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 300 }), fc.array(fc.nat(400), { maxLength: 10 }), fc.array(fc.boolean(), { maxLength: 12 }), (payload, cuts, apart) => {
        const bytes = encodeNetstring(Buffer.from(payload));
        // the chunks of one read window each, or each in memory of its own where `apart` says so
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].filter((c) => c > 0 && c < bytes.length).sort((a, b) => a - b);
        const bounds = [0, ...points, bytes.length];
        const chunks = bounds.slice(1).map((end, i) => {
          const view = bytes.subarray(bounds[i], end);
          if (apart[i] !== true) return view;
          // a memory of its own: Buffer.from would copy small chunks into Node's shared pool, next to each other
          const own = Buffer.allocUnsafeSlow(view.length);
          view.copy(own);
          return own;
        });
        const reader = new NetstringReader(1024);
        let result: NetstringReadResult | undefined;
        for (const chunk of chunks) result ??= reader.push(chunk);
        assert.equal(result?.kind, 'complete');
        if (result?.kind !== 'complete') return;
        const pieces = result.payload.pieces;
        assert.deepEqual(Buffer.concat(pieces), Buffer.from(payload));
        // every piece is a view of received memory (the encoded bytes, or one chunk kept apart), not a copy
        const inside = (piece: Buffer, c: Buffer): boolean => piece.buffer === c.buffer && piece.byteOffset >= c.byteOffset && piece.byteOffset + piece.length <= c.byteOffset + c.length;
        for (const piece of pieces) assert.ok(inside(piece, bytes) || chunks.some((c) => inside(piece, c)), 'a piece is not a view of what was received');
        // no two consecutive pieces continue each other
        for (let i = 1; i < pieces.length; i++) {
          const [a, b] = [pieces[i - 1]!, pieces[i]!];
          assert.ok(!(a.buffer === b.buffer && a.byteOffset + a.length === b.byteOffset), `pieces ${i - 1} and ${i} continue each other`);
        }
        if (!apart.some((a) => a)) assert.equal(pieces.length, 1, 'the chunks of one buffer make one piece');
      }),
    );
  });

  it('leaves bytes after a long payload unread', () => {
    const r = readChunked(Buffer.from('40:' + 'x'.repeat(40) + ',extra'), [], 100);
    assert.equal(r?.kind, 'complete');
    if (r?.kind === 'complete') assert.equal(r.unread.toString(), 'extra');
  });
});

describe('inner netstring parser', () => {
  const FAIL = ['', ':', ':foo,', 'foo', 'foo:bar,', ' 3:foo,', '03:foo,', '+3:foo,', '-3:foo,', '1.0:x,', '1e0:x,', '18446744073709551616:x,', '3:foo', '3:fo,', '3:foo;'];

  it('refuses the malformed inner-field examples', () => {
    for (const v of FAIL) assert.equal(parseInnerNetstring(Buffer.from(v), 0), undefined, JSON.stringify(v));
  });

  it('parses the well-formed inner-field examples', () => {
    assert.equal(parseInnerNetstring(Buffer.from('3:foo,'), 0)?.value.toString(), 'foo');
    const empty = parseInnerNetstring(Buffer.from('0:,'), 0);
    assert.equal(empty?.value.length, 0);
    const input = Buffer.from('3:foo,4:tail,');
    const first = parseInnerNetstring(input, 0)!;
    assert.equal(first.value.toString(), 'foo');
    assert.equal(parseInnerNetstring(input, first.next)?.value.toString(), 'tail');
    assert.equal(parseInnerNetstring(Buffer.from('000:,'), 0)?.value.length, 0);
  });

  it('round-trips any payload and never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (payload) => {
        const parsed = parseInnerNetstring(encodeNetstring(Buffer.from(payload)), 0);
        assert.deepEqual(parsed?.value, Buffer.from(payload));
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.nat(100), (bytes, offset) => {
        parseInnerNetstring(Buffer.from(bytes), Math.min(offset, bytes.length));
      }),
    );
  });
});
