// Pond log datagrams, protocol version 2 (docs/pond.md): a pure
// encoder for the one record qrelay sends per mail, and its MESSAGE text.
// zlib.crc32 (Node ≥ 20.15) is exactly the CRC-32/ISO-HDLC the protocol uses;
// node:zlib is loaded with the first datagram (a config without a log server
// never needs it).
import { packageRequire } from '../package-dir.cjs';

export const POND_MAGIC = 0x63046103;

/** Attribute codes (docs/pond.md); qrelay emits only a few of them. */
export const PondAttribute = {
  nop: 0x00,
  timestamp: 0x01,
  remoteHost: 0x02,
  site: 0x03,
  httpMethod: 0x04,
  httpUri: 0x05,
  httpReferer: 0x06,
  userAgent: 0x07,
  httpStatus: 0x08,
  length: 0x09,
  traffic: 0x0a,
  duration: 0x0b,
  host: 0x0c,
  message: 0x0d,
  forwardedTo: 0x0e,
  type: 0x0f,
  json: 0x10,
  analyticsId: 0x11,
  generator: 0x12,
  contentType: 0x13,
  truncated: 0x14,
} as const;

export const POND_TYPE_SUBMISSION = 3;

/** One mail's record.  Strings are byte strings (one char per byte); u64 fields are bigints. */
export interface PondRecord {
  /** Microseconds since the Unix epoch. */
  readonly timestampUs: bigint;
  /** The mail's account; omitted when undefined or empty. */
  readonly site: string | undefined;
  readonly message: string;
  readonly length: bigint;
  readonly trafficReceived: bigint;
  readonly trafficSent: bigint;
  readonly durationUs: bigint;
}

/** A string attribute is copied as a C string: cut at its first NUL. */
function cString(text: string): Buffer {
  const nul = text.indexOf('\0');
  return Buffer.from(nul < 0 ? text : text.slice(0, nul), 'latin1');
}

function u64(value: bigint): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, value));
  return b;
}

function code(attribute: number): Buffer {
  return Buffer.of(attribute);
}

function stringAttribute(attribute: number, text: string): Buffer[] {
  return [code(attribute), cString(text), Buffer.of(0)];
}

let crc32: ((data: Buffer) => number) | undefined;

/** Magic, the attribute bytes, then the CRC-32 of the attribute bytes (big-endian). */
export function frameDatagram(attributes: Buffer): Buffer {
  const datagram = Buffer.alloc(4 + attributes.length + 4);
  datagram.writeUInt32BE(POND_MAGIC, 0);
  attributes.copy(datagram, 4);
  crc32 ??= (packageRequire('node:zlib') as typeof import('node:zlib')).crc32;
  datagram.writeUInt32BE(crc32(attributes), 4 + attributes.length);
  return datagram;
}

/** The datagram for one mail, attributes in the order of docs/pond.md */
export function encodePondRecord(record: PondRecord): Buffer {
  const site = record.site === undefined ? '' : cString(record.site).toString('latin1');
  const parts: Buffer[] = [code(PondAttribute.timestamp), u64(record.timestampUs)];
  if (site !== '') parts.push(...stringAttribute(PondAttribute.site, site));
  parts.push(
    ...stringAttribute(PondAttribute.message, record.message),
    code(PondAttribute.length),
    u64(record.length),
    code(PondAttribute.traffic),
    u64(record.trafficReceived),
    u64(record.trafficSent),
    code(PondAttribute.duration),
    u64(record.durationUs),
    code(PondAttribute.type),
    Buffer.of(POND_TYPE_SUBMISSION),
  );
  return frameDatagram(Buffer.concat(parts));
}

/**
 * The MESSAGE text (docs/pond.md): `from=<S> to=<R1>,<R2>` and, when the
 * suffix is not empty, a space and the suffix.  Byte strings in and out.
 */
export function pondMessage(sender: string, recipients: readonly string[], suffix: string): string {
  const text = `from=<${sender}> to=${recipients.map((r) => `<${r}>`).join(',')}`;
  return suffix === '' ? text : `${text} ${suffix}`;
}
