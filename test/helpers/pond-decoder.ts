// A Pond v2 datagram parser written from the receiver rules of
// docs/pond.md, independent of the encoder, for cross-checking it.
import { crc32 } from 'node:zlib';

export type PondValue = bigint | string | number | readonly [bigint, bigint];

export interface DecodedAttribute {
  readonly code: number;
  readonly value: PondValue | undefined;
}

const STRING_CODES = new Set([0x02, 0x03, 0x05, 0x06, 0x07, 0x0c, 0x0d, 0x0e, 0x10, 0x11, 0x12]);
const U64_CODES = new Set([0x01, 0x09, 0x0b]);
const U8_CODES = new Set([0x04, 0x0f, 0x13, 0x14]);

/** The attributes in wire order, or a reason for rejecting the datagram. */
export function decodePond(datagram: Buffer): DecodedAttribute[] | string {
  if (datagram.length < 4) return 'short';
  if (datagram.readUInt32BE(0) !== 0x63046103) return 'bad magic';
  if (datagram.length < 8) return 'short';
  const body = datagram.subarray(4, datagram.length - 4);
  if (crc32(body) !== datagram.readUInt32BE(datagram.length - 4)) return 'bad crc';
  const out: DecodedAttribute[] = [];
  let at = 0;
  while (at < body.length) {
    const code = body[at++]!;
    if (code === 0x00) continue;
    if (STRING_CODES.has(code)) {
      const nul = body.indexOf(0, at);
      if (nul < 0) return 'unterminated string';
      out.push({ code, value: body.toString('latin1', at, nul) });
      at = nul + 1;
    } else if (U64_CODES.has(code)) {
      if (at + 8 > body.length) return 'truncated u64';
      out.push({ code, value: body.readBigUInt64BE(at) });
      at += 8;
    } else if (U8_CODES.has(code)) {
      if (at + 1 > body.length) return 'truncated u8';
      out.push({ code, value: body[at]! });
      at += 1;
    } else if (code === 0x08) {
      if (at + 2 > body.length) return 'truncated u16';
      out.push({ code, value: body.readUInt16BE(at) });
      at += 2;
    } else if (code === 0x0a) {
      if (at + 16 > body.length) return 'truncated traffic';
      out.push({ code, value: [body.readBigUInt64BE(at), body.readBigUInt64BE(at + 8)] });
      at += 16;
    } else {
      break; // unknown code: keep what was read
    }
  }
  return out;
}

/** The fields qrelay sends (docs/pond.md), read back by attribute code. */
export interface DecodedMailRecord {
  readonly codes: readonly number[];
  readonly timestampUs: bigint;
  readonly site: string | undefined;
  readonly message: string;
  readonly length: bigint;
  readonly traffic: readonly [bigint, bigint];
  readonly durationUs: bigint;
  readonly type: number;
}

export function decodeMailRecord(datagram: Buffer): DecodedMailRecord {
  const attributes = decodePond(datagram);
  if (typeof attributes === 'string') throw new Error(`datagram rejected: ${attributes}`);
  const get = (code: number): PondValue | undefined => attributes.find((a) => a.code === code)?.value;
  return {
    codes: attributes.map((a) => a.code),
    timestampUs: get(0x01) as bigint,
    site: get(0x03) as string | undefined,
    message: get(0x0d) as string,
    length: get(0x09) as bigint,
    traffic: get(0x0a) as readonly [bigint, bigint],
    durationUs: get(0x0b) as bigint,
    type: get(0x0f) as number,
  };
}
