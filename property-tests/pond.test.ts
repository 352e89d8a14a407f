// Property: every datagram the Pond encoder produces parses back (with the
// receiver rules of docs/pond.md) to the same fields, and its CRC checks.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { encodePondRecord, pondMessage, type PondRecord } from '../src/protocol/pond.js';
import { decodeMailRecord, decodePond } from '../test/helpers/pond-decoder.js';

const U64_MAX = (1n << 64n) - 1n;
const u64 = fc.bigInt({ min: 0n, max: U64_MAX });
/** Byte strings (one char per byte), NULs included. */
const byteString = fc.uint8Array({ maxLength: 300 }).map((bytes) => Buffer.from(bytes).toString('latin1'));

const record: fc.Arbitrary<PondRecord> = fc.record({
  timestampUs: u64,
  site: fc.option(byteString, { nil: undefined }),
  message: byteString,
  length: u64,
  trafficReceived: u64,
  trafficSent: u64,
  durationUs: u64,
});

function cString(s: string): string {
  const nul = s.indexOf('\0');
  return nul < 0 ? s : s.slice(0, nul);
}

test('encoded records decode to the same fields, in the order of docs/pond.md', () => {
  fc.assert(
    fc.property(record, (r) => {
      const decoded = decodeMailRecord(encodePondRecord(r));
      const site = r.site === undefined ? '' : cString(r.site);
      assert.deepEqual(decoded.codes, site === '' ? [1, 13, 9, 10, 11, 15] : [1, 3, 13, 9, 10, 11, 15]);
      assert.equal(decoded.timestampUs, r.timestampUs);
      assert.equal(decoded.site, site === '' ? undefined : site);
      assert.equal(decoded.message, cString(r.message));
      assert.equal(decoded.length, r.length);
      assert.deepEqual(decoded.traffic, [r.trafficReceived, r.trafficSent]);
      assert.equal(decoded.durationUs, r.durationUs);
      assert.equal(decoded.type, 3);
    }),
    { numRuns: 500 },
  );
});

test('the CRC catches any single flipped bit after the magic', () => {
  fc.assert(
    fc.property(record, fc.nat(), fc.integer({ min: 0, max: 7 }), (r, where, bit) => {
      const datagram = encodePondRecord(r);
      assert.notEqual(typeof decodePond(datagram), 'string');
      const at = 4 + (where % (datagram.length - 4));
      datagram[at]! ^= 1 << bit;
      assert.equal(decodePond(datagram), 'bad crc');
    }),
    { numRuns: 500 },
  );
});

test('message texts list every recipient in angle brackets', () => {
  const address = fc.stringMatching(/^[a-z0-9.@-]{0,20}$/);
  fc.assert(
    fc.property(address, fc.array(address, { minLength: 1, maxLength: 10 }), byteString, (sender, recipients, suffix) => {
      const text = pondMessage(sender, recipients, suffix);
      const head = `from=<${sender}> to=<${recipients.join('>,<')}>`;
      assert.equal(text, suffix === '' ? head : `${head} ${suffix}`);
    }),
  );
});
