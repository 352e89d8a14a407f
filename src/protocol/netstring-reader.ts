// Incremental reader of one netstring from a byte stream, as the original
// reads it (docs/protocol.md): a 32-byte header buffer checked on every arrival,
// then a payload buffer of exactly length + 1 bytes allocated once.

const HEADER_MAX = 32;
const COLON = 0x3a;
const COMMA = 0x2c;
const U64_MAX = (1n << 64n) - 1n;

export type NetstringError =
  | { readonly kind: 'malformed' }
  | { readonly kind: 'too-large'; readonly length: bigint }
  | { readonly kind: 'garbage' };

export type NetstringReadResult =
  | { readonly kind: 'complete'; readonly payload: Buffer; readonly unread: Buffer }
  | NetstringError;

/** The log text the original prints for a reader error. */
export function describeNetstringError(e: NetstringError): string {
  switch (e.kind) {
    case 'malformed':
      return 'Malformed netstring';
    case 'too-large':
      return `Netstring is too large: ${e.length}`;
    case 'garbage':
      return 'Garbage received after netstring';
  }
}

const MALFORMED: NetstringError = { kind: 'malformed' };
const GARBAGE: NetstringError = { kind: 'garbage' };
const EMPTY = Buffer.alloc(0);

export class NetstringReader {
  private readonly header = Buffer.allocUnsafe(HEADER_MAX);
  private headerLength = 0;
  private payload: Buffer | undefined;
  private filled = 0;

  constructor(private readonly maxLength: number) {}

  /**
   * Feeds one chunk.  Returns undefined while more bytes are needed; a
   * result once the netstring is complete or broken.  `unread` holds the
   * bytes of the chunk that the original would not have read.
   */
  push(chunk: Buffer): NetstringReadResult | undefined {
    let offset = 0;
    if (this.payload === undefined) {
      const take = Math.min(HEADER_MAX - this.headerLength, chunk.length);
      chunk.copy(this.header, this.headerLength, 0, take);
      this.headerLength += take;
      offset = take;
      const result = this.checkHeader();
      if (result !== undefined) return result;
      if (this.payload === undefined) return undefined;
    }
    const payload: Buffer = this.payload;
    const take = Math.min(payload.length - this.filled, chunk.length - offset);
    chunk.copy(payload, this.filled, offset, offset + take);
    this.filled += take;
    offset += take;
    if (this.filled < payload.length) return undefined;
    return this.finish(offset < chunk.length ? chunk.subarray(offset) : EMPTY);
  }

  private checkHeader(): NetstringReadResult | undefined {
    const h = this.header;
    const n = this.headerLength;
    let colon = -1;
    for (let i = 0; i < n; i++) {
      const b = h[i]!;
      if (b >= 0x30 && b <= 0x39) continue;
      colon = i;
      break;
    }
    const digits = colon < 0 ? n : colon;
    if (digits === 0) return MALFORMED;
    const value = BigInt(h.toString('latin1', 0, digits));
    if (value > U64_MAX) return MALFORMED;
    if (colon < 0) return n >= HEADER_MAX ? MALFORMED : undefined;
    if (h[colon] !== COLON) return MALFORMED;
    if (value > BigInt(this.maxLength)) return { kind: 'too-large', length: value };
    const length = Number(value);
    const after = n - colon - 1;
    if (after > length + 1) return GARBAGE;
    this.payload = Buffer.allocUnsafe(length + 1);
    h.copy(this.payload, 0, colon + 1, n);
    this.filled = after;
    if (this.filled === this.payload.length) return this.finish(EMPTY);
    return undefined;
  }

  private finish(unread: Buffer): NetstringReadResult {
    const payload = this.payload!;
    if (payload[payload.length - 1] !== COMMA) return MALFORMED;
    return { kind: 'complete', payload: payload.subarray(0, payload.length - 1), unread };
  }
}
