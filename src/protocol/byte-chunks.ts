// Bytes as received: a list of buffers read from a socket, kept as they
// arrived (never reserved in advance, never copied to grow) and relayed
// from the same buffers with gathered writes.

const EMPTY = Buffer.alloc(0);

export class ByteChunks {
  /** Total number of bytes. */
  readonly length: number;

  /** `pieces` are kept (not copied): they must not change afterwards. */
  constructor(readonly pieces: readonly Buffer[]) {
    let n = 0;
    for (const p of pieces) n += p.length;
    this.length = n;
  }

  static of(buffer: Buffer): ByteChunks {
    return new ByteChunks([buffer]);
  }

  /** The byte at `index` (undefined past the end). */
  byteAt(index: number): number | undefined {
    for (const p of this.pieces) {
      if (index < p.length) return p[index];
      index -= p.length;
    }
    return undefined;
  }

  /** Bytes `start` … `end` as views into the pieces (no copy). */
  slice(start: number, end: number): ByteChunks {
    const out: Buffer[] = [];
    let at = 0;
    for (const p of this.pieces) {
      const from = Math.max(start - at, 0);
      const to = Math.min(end - at, p.length);
      if (from < to) out.push(from === 0 && to === p.length ? p : p.subarray(from, to));
      at += p.length;
      if (at >= end) break;
    }
    return new ByteChunks(out);
  }

  /**
   * Bytes `start` … `end` as one buffer: a view when they lie in one piece,
   * else a copy.  Only for short fields (envelope, headers), never the body.
   */
  contiguous(start: number, end: number): Buffer {
    const part = this.slice(start, end).pieces;
    if (part.length === 0) return EMPTY;
    return part.length === 1 ? part[0]! : Buffer.concat(part);
  }
}
