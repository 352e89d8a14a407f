// Structured-but-wrong QMQP requests, each with the answer
// documented for it (docs/protocol.md), independent of qrelay's own
// parser: every generated part knows whether it is well-formed and valid,
// and the oracle applies the documented validation order to those facts.
import fc from 'fast-check';

/** The fuzz daemon's listener accepts requests up to this size. */
export const FUZZ_MAX_SIZE = 65_536;

/**
 * The config the fuzzed daemon runs: answers depend on the first recipient
 * only.  The runner keeps hundreds of connections of one uid in flight, so
 * the per-uid cap is raised far above that (still counted, never reached:
 * a connection the count forgot would show as a refused case).
 */
export const FUZZ_CONFIG = `max_size = ${FUZZ_MAX_SIZE}
max_connections_per_uid = 100000
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  local who = m.recipients[1]:match('^(.-)@')
  if who == 'reject' then return m:reject() end
  if who == 'fail' then error('deliberate') end
  if who == 'nothing' then return end
  return m:discard()
end)
`;

const ANSWERS = {
  discard: '10:Kdiscarded,',
  reject: '9:Drejected,',
  scriptFailed: '14:Zscript failed,',
  malformed: '16:Dmalformed input,',
  badAddress: '12:Dbad address,',
  tooMany: '20:Dtoo many recipients,',
  none: '',
} as const;

/** Over max_size: a client still reading learns why (then the connection closes). */
const TOO_LARGE = (() => {
  const text = `Dmessage too large (max_size ${FUZZ_MAX_SIZE})`;
  return `${text.length}:${text},`;
})();

/** How the bytes reach the daemon. */
export type Delivery =
  | { readonly kind: 'whole' }
  | { readonly kind: 'split'; readonly at: readonly number[] }
  | { readonly kind: 'trickle' }
  | { readonly kind: 'half-close' }
  | { readonly kind: 'abandon'; readonly after: number };

export interface FuzzCase {
  readonly description: string;
  readonly bytes: Buffer;
  readonly delivery: Delivery;
  /** Every answer the documentation allows (`''`: the connection is closed without one). */
  readonly allowed: readonly string[];
}

// ---- inner fields: a netstring that knows whether it is well-formed ------

interface Field {
  readonly bytes: Buffer;
  readonly wellFormed: boolean;
  readonly what: string;
}

function netstring(payload: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`${payload.length}:`), payload, Buffer.from(',')]);
}

/** A netstring of `payload`, intact or broken in one of the ways the field parser refuses (docs/protocol.md). */
function fieldOf(payload: Buffer): fc.Arbitrary<Field> {
  const good: Field = { bytes: netstring(payload), wellFormed: true, what: 'ok' };
  const n = payload.length;
  const broken: [string, Buffer, boolean][] = [
    // a zero length may be written with any number of zeros (as in the original)
    ['leading zero', Buffer.concat([Buffer.from(`0${n}:`), payload, Buffer.from(',')]), n === 0],
    ['missing comma', Buffer.concat([Buffer.from(`${n}:`), payload]), false],
    ['wrong terminator', Buffer.concat([Buffer.from(`${n}:`), payload, Buffer.from(';')]), false],
    ['length too long', Buffer.concat([Buffer.from(`${n + 1}:`), payload, Buffer.from(',')]), false],
    ['non-digit length', Buffer.concat([Buffer.from(`${n}x:`), payload, Buffer.from(',')]), false],
    ['sign', Buffer.concat([Buffer.from(`+${n}:`), payload, Buffer.from(',')]), false],
    ['huge length', Buffer.concat([Buffer.from('18446744073709551616:'), payload, Buffer.from(',')]), false],
    ['no colon', Buffer.concat([Buffer.from(`${n}`), payload, Buffer.from(',')]), false],
  ];
  return fc.oneof(
    { weight: 12, arbitrary: fc.constant(good) },
    { weight: 1, arbitrary: fc.constantFrom(...broken).map(([what, bytes, wellFormed]) => ({ bytes, wellFormed, what })) },
  );
}

// ---- addresses: pools docs/protocol.md names valid or invalid -----------

const VALID_ADDRESSES = ['a@b.c', 'foo+bar@example.com', '"foo@bar"@example.com', 'nobody@localhost', 'x@1.2.3.4', `${'l'.repeat(64)}@example.com`];
const INVALID_ADDRESSES = ['', '@', 'foo@', '@example.com', 'foo<bar@example.com', 'foo@bar@example.com', '"foo bar"@example.com', 'foo bar@example.com', 'foo\0bar@example.com', 'a@example.com.', 'a@-x.com', 'a@[1.2.3.4]', `${'l'.repeat(65)}@example.com`, `a@${'d'.repeat(250)}.com`, 'm\xfcller@example.com', '#@[]'];

interface Address {
  readonly text: string;
  readonly valid: boolean;
}

const address: fc.Arbitrary<Address> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...VALID_ADDRESSES).map((text) => ({ text, valid: true })) },
  { weight: 1, arbitrary: fc.constantFrom(...INVALID_ADDRESSES).map((text) => ({ text, valid: false })) },
);

/** The first recipient decides the handler's answer. */
const firstRecipient: fc.Arbitrary<Address> = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom('d@example.com', 'reject@example.com', 'fail@example.com', 'nothing@example.com').map((text) => ({ text, valid: true })) },
  { weight: 1, arbitrary: address },
);

function handlerAnswer(first: string): string {
  const who = first.slice(0, first.lastIndexOf('@'));
  if (who === 'reject') return ANSWERS.reject;
  if (who === 'fail' || who === 'nothing') return ANSWERS.scriptFailed;
  return ANSWERS.discard;
}

// ---- the body and its answer (docs/protocol.md) ---------------------------

interface Body {
  readonly bytes: Buffer;
  readonly answer: string;
  readonly what: string;
}

const message: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 300 }).map((b) => Buffer.from(b)),
  fc.constantFrom('', 'Subject: x\r\n\r\nbody\r\n', 'bare\nLF\0NUL').map((s) => Buffer.from(s, 'latin1')),
);

const recipientList: fc.Arbitrary<Address[]> = fc.oneof(
  { weight: 8, arbitrary: fc.tuple(firstRecipient, fc.array(address, { maxLength: 4 })).map(([first, rest]) => [first, ...rest]) },
  { weight: 1, arbitrary: fc.constant<Address[]>([]) },
  { weight: 1, arbitrary: fc.constantFrom(1024, 1025, 1026).map((n) => Array.from({ length: n }, (_, i) => ({ text: i === 0 ? 'd@example.com' : `r${i}@example.com`, valid: true }))) },
);

const body: fc.Arbitrary<Body> = fc
  .tuple(message, address, recipientList)
  .chain(([msg, sender, recipients]) =>
    fc.tuple(
      fieldOf(msg),
      fieldOf(Buffer.from(sender.text, 'latin1')),
      fc.tuple(...recipients.map((r) => (recipients.length > 5 ? fc.constant<Field>({ bytes: netstring(Buffer.from(r.text, 'latin1')), wellFormed: true, what: 'ok' }) : fieldOf(Buffer.from(r.text, 'latin1'))))),
      fc.oneof({ weight: 9, arbitrary: fc.constant(Buffer.alloc(0)) }, { weight: 1, arbitrary: fc.constantFrom('garbage', 'x,', '0:,x').map((s) => Buffer.from(s)) }),
      fc.constant(sender),
      fc.constant(recipients),
    ),
  )
  .map(([m, s, rs, trailing, sender, recipients]) => {
    const bytes = Buffer.concat([m.bytes, s.bytes, ...rs.map((r) => r.bytes), trailing]);
    const what = `message ${m.what}, sender ${JSON.stringify(sender.text)} ${s.what}, ${recipients.length} recipients${trailing.length ? `, trailing ${JSON.stringify(trailing.toString())}` : ''}`;
    return { bytes, answer: bodyAnswer(m, s, sender, rs, recipients, trailing), what };
  });

/** The validation order of docs/protocol.md, applied to what the generator knows. */
function bodyAnswer(m: Field, s: Field, sender: Address, fields: readonly Field[], recipients: readonly Address[], trailing: Buffer): string {
  // a broken field may swallow what follows it: only well-formed prefixes parse as generated
  if (!m.wellFormed || !s.wellFormed) return ANSWERS.malformed;
  if (!sender.valid) return ANSWERS.badAddress;
  // '0:,x' starts with an empty (invalid) recipient; other trailing bytes are malformed
  const trailingAnswer = trailing.toString() === '0:,x' ? ANSWERS.badAddress : ANSWERS.malformed;
  // no recipient: trailing bytes are read as the first recipient field
  if (recipients.length === 0) return trailing.length > 0 ? trailingAnswer : ANSWERS.malformed;
  let accepted = 0;
  for (let i = 0; i < recipients.length; i++) {
    if (!fields[i]!.wellFormed) return ANSWERS.malformed;
    if (!recipients[i]!.valid) return ANSWERS.badAddress;
    if (accepted === 1024) return ANSWERS.tooMany;
    accepted++;
  }
  if (trailing.length > 0) return trailingAnswer;
  return handlerAnswer(recipients[0]!.text);
}

// ---- the outer netstring and the delivery ---------------------------------

const delivery = (length: number): fc.Arbitrary<Delivery> =>
  fc.oneof(
    { weight: 4, arbitrary: fc.constant<Delivery>({ kind: 'whole' }) },
    { weight: 3, arbitrary: fc.uniqueArray(fc.integer({ min: 1, max: Math.max(1, length - 1) }), { maxLength: 6 }).map((at): Delivery => ({ kind: 'split', at: [...at].sort((a, b) => a - b) })) },
    { weight: length <= 64 ? 1 : 0, arbitrary: fc.constant<Delivery>({ kind: 'trickle' }) },
    { weight: 2, arbitrary: fc.constant<Delivery>({ kind: 'half-close' }) },
    { weight: 1, arbitrary: fc.integer({ min: 0, max: length }).map((after): Delivery => ({ kind: 'abandon', after })) },
  );

/** Whether the outer header is refused (digits, 64-bit range, 31 digits, colon, max_size; then: no answer, but Dmessage too large over max_size). */
type Outer = { readonly bytes: Buffer; readonly what: string; readonly complete: boolean; readonly extra: boolean; readonly tooLarge?: boolean };

function outerOf(payload: Buffer): fc.Arbitrary<Outer> {
  const n = payload.length;
  const whole = netstring(payload);
  const refused = (what: string, bytes: Buffer): Outer => ({ bytes, what, complete: false, extra: false });
  return fc.oneof(
    { weight: 20, arbitrary: fc.constant<Outer>({ bytes: whole, what: 'ok', complete: true, extra: false }) },
    { weight: 2, arbitrary: fc.integer({ min: 1, max: 31 - String(n).length }).map((zeros): Outer => ({ bytes: Buffer.concat([Buffer.from('0'.repeat(zeros)), whole]), what: `${zeros} leading zeros`, complete: true, extra: false })) },
    { weight: 1, arbitrary: fc.constant(refused('32 digits', Buffer.concat([Buffer.from('0'.repeat(32 - String(n).length)), whole]))) },
    { weight: 1, arbitrary: fc.constant<Outer>({ ...refused('over max_size', Buffer.concat([Buffer.from(`${FUZZ_MAX_SIZE + 1}:`), payload])), tooLarge: true }) },
    { weight: 1, arbitrary: fc.constant(refused('overflowing length', Buffer.from('99999999999999999999999:'))) },
    { weight: 1, arbitrary: fc.constantFrom('-', ' ', 'x', ':', '0x').map((p) => refused(`bad header ${JSON.stringify(p)}`, Buffer.concat([Buffer.from(p), whole]))) },
    { weight: 1, arbitrary: fc.constant(refused('missing comma', Buffer.concat([Buffer.from(`${n}:`), payload, Buffer.from(';')]))) },
    { weight: 2, arbitrary: fc.integer({ min: 0, max: Math.max(0, whole.length - 1) }).map((cut) => refused(`truncated at ${cut}`, whole.subarray(0, cut))) },
    { weight: 1, arbitrary: fc.constantFrom('x', '\n', '3:abc,').map((e): Outer => ({ bytes: Buffer.concat([whole, Buffer.from(e)]), what: `extra ${JSON.stringify(e)}`, complete: true, extra: true })) },
  );
}

/** One fuzz case: a body, its outer framing, how it is sent, and the allowed answers. */
export const fuzzCase: fc.Arbitrary<FuzzCase> = body.chain((b) =>
  outerOf(b.bytes).chain((outer) =>
    delivery(outer.bytes.length).map((d): FuzzCase => {
      const description = `${outer.what}; ${b.what}; ${d.kind}`;
      if (d.kind === 'abandon' || !outer.complete) {
        // an abandoned connection never reads an answer; a refused or
        // incomplete request gets none (an incomplete one must end with EOF)
        const ending: Delivery = d.kind === 'abandon' ? d : { kind: 'half-close' };
        // over max_size the answer is written before the close, which the client may see first as a reset
        const allowed = outer.tooLarge === true && d.kind !== 'abandon' ? [TOO_LARGE, ANSWERS.none] : [ANSWERS.none];
        return { description, bytes: outer.bytes, delivery: ending, allowed };
      }
      // bytes after the request: refused as garbage when they share the
      // header's first read, else the request is answered (the handler is synchronous)
      return { description, bytes: outer.bytes, delivery: d, allowed: outer.extra ? [ANSWERS.none, b.answer] : [b.answer] };
    }),
  ),
);

/** The good mail sent after every batch, and its answer. */
export const GOOD_MAIL = netstring(Buffer.concat([netstring(Buffer.from('Subject: ok\r\n\r\nok\r\n')), netstring(Buffer.from('a@b.c')), netstring(Buffer.from('d@example.com'))]));
export const GOOD_ANSWER = ANSWERS.discard;
