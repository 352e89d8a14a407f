// Properties of the QMQP request parser (docs/protocol.md).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isValidAddress } from '../src/protocol/address.js';
import { encodeNetstring } from '../src/protocol/netstring.js';
import { ByteChunks } from '../src/protocol/byte-chunks.js';
import { parseQmqpRequest, type QmqpParseResult } from '../src/protocol/qmqp.js';

function body(message: string | Buffer, sender: string, recipients: string[]): Buffer {
  return Buffer.concat([encodeNetstring(Buffer.from(message)), encodeNetstring(sender), ...recipients.map((r) => encodeNetstring(r))]);
}

const atom = fc.stringMatching(/^[a-z0-9+_-]{1,10}$/);
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?$/);
const address = fc.tuple(fc.array(atom, { minLength: 1, maxLength: 3 }), fc.array(label, { minLength: 1, maxLength: 3 })).map(([l, d]) => `${l.join('.')}@${d.join('.')}`);

describe('QMQP request parser', () => {
  it('round-trips generated requests and keeps the recipient bytes verbatim', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), address, fc.array(address, { minLength: 1, maxLength: 20 }), (message, sender, recipients) => {
        const b = body(Buffer.from(message), sender, recipients);
        const r = parseQmqpRequest(b);
        assert.equal(r.kind, 'request');
        if (r.kind !== 'request') return;
        assert.deepEqual(Buffer.concat(r.request.message.pieces), Buffer.from(message));
        assert.equal(r.request.sender, sender);
        assert.deepEqual(r.request.recipients, recipients);
        assert.deepEqual(r.request.recipientBytes, Buffer.concat(recipients.map((x) => encodeNetstring(x))));
      }),
    );
  });

  it('parses a body split into any chunks as it parses the whole [issue 10: memory grows with the data]', () => {
    const summary = (r: QmqpParseResult): unknown =>
      r.kind === 'request' ? [Buffer.concat(r.request.message.pieces), r.request.sender, r.request.recipients, r.request.recipientBytes, r.request.body.length] : r.kind;
    const generated = fc.tuple(fc.uint8Array({ maxLength: 100 }), address, fc.array(address, { minLength: 1, maxLength: 5 })).map(([m, s, r]) => body(Buffer.from(m), s, r));
    fc.assert(
      fc.property(fc.oneof(generated, fc.uint8Array({ maxLength: 120 }).map((b) => Buffer.from(b))), fc.array(fc.nat(200), { maxLength: 8 }), (bytes, cuts) => {
        const points = [...new Set(cuts.map((c) => c % (bytes.length + 1))), bytes.length].sort((a, b) => a - b);
        const pieces: Buffer[] = [];
        let start = 0;
        for (const end of points) {
          if (end > start) pieces.push(bytes.subarray(start, end));
          start = Math.max(start, end);
        }
        assert.deepEqual(summary(parseQmqpRequest(new ByteChunks(pieces))), summary(parseQmqpRequest(bytes)));
      }),
    );
  });

  it('never throws on arbitrary bytes and always gives a named result', () => {
    const kinds = new Set(['request', 'malformed', 'bad-address', 'too-many-recipients']);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        assert.ok(kinds.has(parseQmqpRequest(Buffer.from(bytes)).kind));
      }),
    );
  });

  it('classifies requests without a recipient, with stray spaces or trailing garbage as malformed', () => {
    for (const v of [
      '7:message,18:sender@example.com,',
      '7:message, 18:sender@example.com,21:recipient@example.com,',
      '7:message,18:sender@example.com, 21:recipient@example.com,',
      '7:message,18:sender@example.com,21:recipient@example.com,garbage',
    ]) {
      assert.equal(parseQmqpRequest(Buffer.from(v)).kind, 'malformed', v);
    }
    assert.equal(parseQmqpRequest(body('message', 'not an address', ['r@example.com'])).kind, 'bad-address');
    assert.equal(parseQmqpRequest(body('message', 's@example.com', ['not an address'])).kind, 'bad-address');
  });

  it('accepts an empty message', () => {
    assert.equal(parseQmqpRequest(Buffer.from('0:,18:sender@example.com,21:recipient@example.com,')).kind, 'request');
  });

  it('checks in the documented order', () => {
    assert.equal(parseQmqpRequest(Buffer.concat([body('m', 'bad', []), Buffer.from('garbage')])).kind, 'bad-address');
    assert.equal(parseQmqpRequest(Buffer.concat([body('m', 's@x.y', []), Buffer.from('x:bad,'), encodeNetstring('nope')])).kind, 'malformed');
  });

  it('allows 1024 recipients and refuses the 1025th only when it is valid', () => {
    const r1024 = Array.from({ length: 1024 }, (_, i) => `r${i}@example.com`);
    assert.equal(parseQmqpRequest(body('m', 's@x.y', r1024)).kind, 'request');
    assert.equal(parseQmqpRequest(body('m', 's@x.y', [...r1024, 'last@example.com'])).kind, 'too-many-recipients');
    assert.equal(parseQmqpRequest(body('m', 's@x.y', [...r1024, 'invalid'])).kind, 'bad-address');
    assert.equal(parseQmqpRequest(Buffer.concat([body('m', 's@x.y', r1024), Buffer.from('junk')])).kind, 'malformed');
  });
});

describe('address syntax', () => {
  const valid = ['foo@example.com', 'foo+bar@example.com', '"foo@bar"@example.com', '"foo<bar"@example.com', 'nobody@localhost', 'a@1.2.3.4', 'x@' + 'a'.repeat(63) + '.com'];
  const invalid = [
    '', '@', 'foo@', '@example.com', 'foo<bar@example.com', 'foo@bar@example.com', '"foo bar"@example.com', 'foo bar@example.com',
    'foo\0bar@example.com', 'a@example.com.', 'a@-x.com', 'a@[1.2.3.4]', 'a'.repeat(65) + '@example.com', 'a@' + 'b'.repeat(240) + '.' + 'c'.repeat(11),
    '#@[]', 'a..b@example.com', '.a@example.com', 'a.@example.com', 'a@b_c.com', 'a@' + 'a'.repeat(64) + '.com', 'ä@example.com', '""@example.com',
  ];
  it('accepts the valid examples', () => {
    for (const a of valid) assert.ok(isValidAddress(a), a);
  });
  it('refuses the invalid examples', () => {
    for (const a of invalid) assert.ok(!isValidAddress(a), a);
  });
  it('refuses every byte at or above 0x80 anywhere', () => {
    fc.assert(
      fc.property(address, fc.nat(), fc.integer({ min: 0x80, max: 0xff }), (a, at, byte) => {
        const i = at % (a.length + 1);
        assert.ok(!isValidAddress(a.slice(0, i) + String.fromCharCode(byte) + a.slice(i)));
      }),
    );
  });
  it('never accepts more than 254 bytes', () => {
    fc.assert(fc.property(fc.string({ minLength: 255, maxLength: 400 }), (s) => assert.ok(!isValidAddress(s))));
  });
});
