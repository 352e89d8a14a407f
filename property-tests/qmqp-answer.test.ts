// Property: the shortcut for an answer that arrives in one chunk
// (wholeAnswer) gives the same result as the netstring reader the original
// reads answers with, or leaves the chunk to it; never a different answer.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { MAX_RESPONSE, qmqpAnswer, wholeAnswer } from '../src/actions/qmqp-response.js';
import { NetstringReader } from '../src/protocol/netstring-reader.js';

/** What the reader makes of one chunk: an answer, a failure, or undefined (more bytes needed). */
function readerAnswer(chunk: Buffer): unknown {
  const result = new NetstringReader(MAX_RESPONSE).push(chunk);
  if (result === undefined) return undefined;
  const answer = qmqpAnswer(result);
  return answer instanceof Error ? { failure: answer.message } : answer;
}

/** Chunks near the answer format: `N:payload,` with wrong lengths, leading zeros, long headers, other code letters, extra bytes. */
const chunks: fc.Arbitrary<Buffer> = fc
  .tuple(
    fc.oneof(fc.constantFrom('', '0', '00', '0'.repeat(30), '0'.repeat(31)), fc.constant('')),
    fc.oneof({ arbitrary: fc.constant(-1), weight: 4 }, { arbitrary: fc.integer({ min: 0, max: 300 }), weight: 1 }),
    fc.oneof(fc.constantFrom('K', 'Z', 'D', 'X', ''), fc.string({ maxLength: 1 })),
    fc.string({ maxLength: 280 }),
    fc.oneof({ arbitrary: fc.constant(':'), weight: 4 }, { arbitrary: fc.constantFrom(';', ''), weight: 1 }),
    fc.oneof({ arbitrary: fc.constant(','), weight: 4 }, { arbitrary: fc.constantFrom('', ',\n', ',x', '.'), weight: 1 }),
  )
  .map(([zeros, declared, code, rest, colon, end]) => {
    const payload = code + rest;
    const length = declared < 0 ? payload.length : declared;
    return Buffer.from(`${zeros}${length}${colon}${payload}${end}`, 'latin1');
  });

describe('answer in one chunk', () => {
  it('is decoded as the netstring reader decodes it, or left to the reader', () => {
    let shortcuts = 0;
    fc.assert(
      fc.property(fc.oneof(chunks, fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a))), (chunk) => {
        const whole = wholeAnswer(chunk);
        if (whole === undefined) return;
        shortcuts++;
        assert.deepEqual(whole, readerAnswer(chunk));
      }),
      { numRuns: 5000 },
    );
    // the generator does reach the shortcut
    assert.ok(shortcuts > 500, `${shortcuts} shortcuts`);
  });

  it('takes the usual answers', () => {
    assert.deepEqual(wholeAnswer(Buffer.from('3:Kok,')), { response: 'Kok' });
    assert.deepEqual(wholeAnswer(Buffer.from('0:,')), { response: 'Zmalformed relay response', log: ['Malformed QMQP response'] });
    assert.equal(wholeAnswer(Buffer.from('3:Kok,\n')), undefined);
    assert.equal(wholeAnswer(Buffer.from(`${'0'.repeat(31)}3:Kok,`)), undefined);
  });
});
