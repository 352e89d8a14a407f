// Incremental reader of one netstring from a byte stream, as the original
// reads it (docs/protocol.md): a 32-byte header buffer checked on every arrival,
// then the payload.  Unlike the original, the payload is not reserved from
// the announced length: it is the list of the received chunks themselves
// (views, no copy; chunks that continue each other in memory as one view),
// so memory grows with the bytes actually sent.
import { ByteChunks } from './byte-chunks.js';

const HEADER_MAX = 32;
const COLON = 0x3a;
const COMMA = 0x2c;
const U64_MAX = (1n << 64n) - 1n;

export type NetstringError =
  | { readonly kind: 'malformed' }
  | { readonly kind: 'too-large'; readonly length: bigint }
  | { readonly kind: 'garbage' };

export type NetstringReadResult =
  | { readonly kind: 'complete'; readonly payload: ByteChunks; readonly unread: Buffer }
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
  /** Once the header is complete: the payload and its comma still expected. */
  private remaining = -1;
  private readonly pieces: Buffer[] = [];
  /** Once the header is complete: the netstring's bytes, header and comma included (else Infinity). */
  end = Infinity;

  constructor(private readonly maxLength: number) {}

  /**
   * Feeds one chunk.  Returns undefined while more bytes are needed; a
   * result once the netstring is complete or broken.  `unread` holds the
   * bytes of the chunk that the original would not have read.
   */
  push(chunk: Buffer): NetstringReadResult | undefined {
    let offset = 0;
    if (this.remaining < 0) {
      const before = this.headerLength;
      const take = Math.min(HEADER_MAX - before, chunk.length);
      chunk.copy(this.header, before, 0, take);
      this.headerLength += take;
      const result = this.checkHeader();
      if (typeof result !== 'number') return result;
      // the payload starts right after the colon, in this chunk
      offset = result + 1 - before;
    }
    const take = Math.min(this.remaining, chunk.length - offset);
    if (take > 0) this.keep(chunk, offset, take);
    this.remaining -= take;
    offset += take;
    if (this.remaining > 0) return undefined;
    return this.finish(offset < chunk.length ? chunk.subarray(offset) : EMPTY);
  }

  /**
   * Keeps `take` bytes of `chunk` from `offset` as a piece of the payload,
   * or, where they directly continue the last piece in memory (consecutive
   * reads into one window), as a longer view of that piece: fewer pieces,
   * fewer buffers in the gathered write that relays them.
   */
  private keep(chunk: Buffer, offset: number, take: number): void {
    const pieces = this.pieces;
    const last = pieces.length - 1;
    const previous = last >= 0 ? pieces[last]! : undefined;
    const start = chunk.byteOffset + offset;
    if (previous !== undefined && previous.byteOffset + previous.length === start && previous.buffer === chunk.buffer) {
      pieces[last] = Buffer.from(previous.buffer, previous.byteOffset, previous.length + take);
    } else pieces.push(offset === 0 && take === chunk.length ? chunk : chunk.subarray(offset, offset + take));
  }

  /** A result, undefined (more header bytes needed), or the colon's index once the header is complete. */
  private checkHeader(): NetstringReadResult | number | undefined {
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
    // up to 15 digits the length is exact as a number (and far below 2^64):
    // no BigInt, whose parsing is a slow runtime call, for every request
    let length = 0;
    if (digits <= 15) {
      for (let i = 0; i < digits; i++) length = length * 10 + (h[i]! - 0x30);
    } else {
      const value = BigInt(h.toString('latin1', 0, digits));
      if (value > U64_MAX) return MALFORMED;
      length = value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
    }
    if (colon < 0) return n >= HEADER_MAX ? MALFORMED : undefined;
    if (h[colon] !== COLON) return MALFORMED;
    if (length > this.maxLength) return { kind: 'too-large', length: BigInt(h.toString('latin1', 0, digits)) };
    const after = n - colon - 1;
    if (after > length + 1) return GARBAGE;
    this.remaining = length + 1;
    this.end = colon + 1 + this.remaining;
    return colon;
  }

  private finish(unread: Buffer): NetstringReadResult {
    const all = new ByteChunks(this.pieces);
    if (all.byteAt(all.length - 1) !== COMMA) return MALFORMED;
    return { kind: 'complete', payload: all.slice(0, all.length - 1), unread };
  }
}
