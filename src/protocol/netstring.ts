// Netstrings (`LEN ":" BYTES ","`): framing for responses and the strict
// parser for the fields inside a QMQP request (docs/protocol.md).

const COLON = 0x3a;
const COMMA = 0x2c;
const U64_MAX = (1n << 64n) - 1n;

/** The `LEN:` header of a netstring of `length` bytes. */
export function netstringHeader(length: number): Buffer {
  return Buffer.from(`${length}:`, 'latin1');
}

export const NETSTRING_TRAILER = Buffer.from(',', 'latin1');

/** A whole netstring as one Buffer (for short payloads such as responses). */
export function encodeNetstring(payload: Buffer | string): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([netstringHeader(bytes.length), bytes, NETSTRING_TRAILER]);
}

/** One field parsed out of `input` at `offset`: its bytes and where parsing continues. */
export interface InnerNetstring {
  readonly value: Buffer;
  readonly next: number;
}

/** Where a field's bytes start and how many there are. */
export interface FieldHeader {
  readonly length: number;
  /** Index of the first byte after the colon. */
  readonly start: number;
}

/**
 * Parses the `LEN:` of a field at `offset` with the rules of the QMQP
 * fields: digits only, no leading zeros (except for zero), u64 range.
 * Returns undefined when malformed or when `input` ends before the colon.
 */
export function parseFieldHeader(input: Buffer, offset: number): FieldHeader | undefined {
  const colon = input.indexOf(COLON, offset);
  if (colon <= offset) return undefined;
  let length = 0;
  let allZero = true;
  for (let i = offset; i < colon; i++) {
    const d = input[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    if (d !== 0) allZero = false;
    length = length * 10 + d;
  }
  if (!allZero && input[offset] === 0x30) return undefined;
  if (colon - offset > 15 && BigInt(input.toString('latin1', offset, colon)) > U64_MAX) return undefined;
  return { length, start: colon + 1 };
}

/**
 * Parses one netstring at `offset` (the field rules of parseFieldHeader,
 * then a final comma).  Returns undefined when malformed.  `value` is a
 * view into `input`.
 */
export function parseInnerNetstring(input: Buffer, offset: number): InnerNetstring | undefined {
  const header = parseFieldHeader(input, offset);
  if (header === undefined) return undefined;
  const { start, length } = header;
  if (!(input.length - start > length)) return undefined;
  if (input[start + length] !== COMMA) return undefined;
  return { value: input.subarray(start, start + length), next: start + length + 1 };
}
