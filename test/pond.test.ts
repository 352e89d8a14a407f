// The Pond encoder against the hand-built vectors of docs/pond.md
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { encodePondRecord, frameDatagram, pondMessage, type PondRecord } from '../src/protocol/pond.js';

/** A hex dump (offset column first, 16 bytes a line) → bytes. */
function fromDump(dump: string): Buffer {
  const hex = dump
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).slice(1).join(''))
    .join('');
  return Buffer.from(hex, 'hex');
}

const ALICE = 'alice@example.com';
const BOB = 'bob@example.org';

interface Vector {
  readonly name: string;
  readonly record: PondRecord;
  readonly dump: string;
  readonly size: number;
  readonly crc: number;
}

const VECTORS: readonly Vector[] = [
  {
    name: 'A: discard, no account',
    record: {
      timestampUs: 1700000000123456n,
      site: undefined,
      message: pondMessage(ALICE, [BOB], 'Kdiscarded'.slice(1)),
      length: 24n,
      trafficReceived: 68n,
      trafficSent: 0n,
      durationUs: 1234n,
    },
    dump: `
0000  63 04 61 03 01 00 06 0a 24 18 20 22 40 0d 66 72
0010  6f 6d 3d 3c 61 6c 69 63 65 40 65 78 61 6d 70 6c
0020  65 2e 63 6f 6d 3e 20 74 6f 3d 3c 62 6f 62 40 65
0030  78 61 6d 70 6c 65 2e 6f 72 67 3e 20 64 69 73 63
0040  61 72 64 65 64 00 09 00 00 00 00 00 00 00 18 0a
0050  00 00 00 00 00 00 00 44 00 00 00 00 00 00 00 00
0060  0b 00 00 00 00 00 00 04 d2 0f 03 bb 08 d3 3c`,
    size: 111,
    crc: 0xbb08d33c,
  },
  {
    name: 'B: relayed, account and one inserted header',
    record: {
      timestampUs: 1700000001000000n,
      site: 'acct-42',
      message: pondMessage(ALICE, [BOB], 'ok'),
      length: 36n,
      trafficReceived: 68n,
      trafficSent: 80n,
      durationUs: 250000n,
    },
    dump: `
0000  63 04 61 03 01 00 06 0a 24 18 2d 82 40 03 61 63
0010  63 74 2d 34 32 00 0d 66 72 6f 6d 3d 3c 61 6c 69
0020  63 65 40 65 78 61 6d 70 6c 65 2e 63 6f 6d 3e 20
0030  74 6f 3d 3c 62 6f 62 40 65 78 61 6d 70 6c 65 2e
0040  6f 72 67 3e 20 6f 6b 00 09 00 00 00 00 00 00 00
0050  24 0a 00 00 00 00 00 00 00 44 00 00 00 00 00 00
0060  00 50 0b 00 00 00 00 00 03 d0 90 0f 03 db 54 97
0070  87`,
    size: 113,
    crc: 0xdb549787,
  },
  {
    name: 'C: cancelled during the handler, two recipients',
    record: {
      timestampUs: 1700000002500000n,
      site: undefined,
      message: pondMessage(ALICE, [BOB, 'carol@example.net'], 'canceled'),
      length: 24n,
      trafficReceived: 89n,
      trafficSent: 0n,
      durationUs: 5000000n,
    },
    dump: `
0000  63 04 61 03 01 00 06 0a 24 18 44 65 a0 0d 66 72
0010  6f 6d 3d 3c 61 6c 69 63 65 40 65 78 61 6d 70 6c
0020  65 2e 63 6f 6d 3e 20 74 6f 3d 3c 62 6f 62 40 65
0030  78 61 6d 70 6c 65 2e 6f 72 67 3e 2c 3c 63 61 72
0040  6f 6c 40 65 78 61 6d 70 6c 65 2e 6e 65 74 3e 20
0050  63 61 6e 63 65 6c 65 64 00 09 00 00 00 00 00 00
0060  00 18 0a 00 00 00 00 00 00 00 59 00 00 00 00 00
0070  00 00 00 0b 00 00 00 00 00 4c 4b 40 0f 03 a1 f3
0080  87 78`,
    size: 130,
    crc: 0xa1f38778,
  },
];

for (const vector of VECTORS) {
  test(`vector ${vector.name}`, () => {
    const expected = fromDump(vector.dump);
    assert.equal(expected.length, vector.size);
    const datagram = encodePondRecord(vector.record);
    assert.deepEqual(datagram, expected);
    assert.equal(datagram.readUInt32BE(datagram.length - 4), vector.crc);
  });
}

test('minimal sanity vector: no attributes', () => {
  assert.deepEqual(frameDatagram(Buffer.alloc(0)), Buffer.from('6304610300000000', 'hex'));
});

test('message text: an empty suffix leaves no trailing space', () => {
  assert.equal(pondMessage('', ['a@b'], ''), 'from=<> to=<a@b>');
  assert.equal(pondMessage('s@x', ['a@b', 'c@d'], 'ok 1'), 'from=<s@x> to=<a@b>,<c@d> ok 1');
});

test('strings are C strings: cut at the first NUL; an empty site is omitted', () => {
  const base = { timestampUs: 0n, length: 0n, trafficReceived: 0n, trafficSent: 0n, durationUs: 0n };
  const cut = encodePondRecord({ ...base, site: 'ab\0cd', message: 'x\0yz' });
  const clean = encodePondRecord({ ...base, site: 'ab', message: 'x' });
  assert.deepEqual(cut, clean);
  const noSite = encodePondRecord({ ...base, site: '', message: 'x' });
  assert.equal(noSite.includes(Buffer.of(0x03, 0x00)), false);
  assert.equal(noSite.length, clean.length - 4);
  // bytes ≥ 0x80 are copied as single bytes
  const high = encodePondRecord({ ...base, site: undefined, message: '\u00ff' });
  assert.equal(high.indexOf(Buffer.of(0x0d, 0xff, 0x00)), 13);
});
