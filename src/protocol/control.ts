// The beng-proxy control datagram (docs/libraries.md): a magic number, then
// packets of big-endian length, command and payload, each padded to a
// multiple of four bytes.
export const CONTROL_MAGIC = 0x63046101;

/** Every command of the protocol (docs/libraries.md). */
export const ControlCommand = {
  NOP: 0,
  TCACHE_INVALIDATE: 1,
  ENABLE_NODE: 2,
  FADE_NODE: 3,
  NODE_STATUS: 4,
  DUMP_POOLS: 5,
  STATS: 6,
  VERBOSE: 7,
  FADE_CHILDREN: 8,
  DISABLE_ZEROCONF: 9,
  ENABLE_ZEROCONF: 10,
  FLUSH_NFS_CACHE: 11,
  FLUSH_FILTER_CACHE: 12,
  STOPWATCH_PIPE: 13,
  DISCARD_SESSION: 14,
  FLUSH_HTTP_CACHE: 15,
  TERMINATE_CHILDREN: 16,
  DISABLE_QUEUE: 17,
  ENABLE_QUEUE: 18,
  RELOAD_STATE: 19,
  DISCONNECT_DATABASE: 20,
  DISABLE_URING: 21,
  RESET_LIMITER: 22,
  REJECT_CLIENT: 23,
  TARPIT_CLIENT: 24,
  CANCEL_JOB: 25,
  EXPIRE_TCACHE_TAG: 26,
} as const;
export type ControlCommandCode = (typeof ControlCommand)[keyof typeof ControlCommand];

/** The length field has 16 bits; longer payloads cannot be encoded. */
export const MAX_CONTROL_PAYLOAD = 0xffff;

export class ControlPayloadTooLong extends Error {
  constructor(length: number) {
    super(`Control payload too long (${length} bytes, at most ${MAX_CONTROL_PAYLOAD})`);
  }
}

/** NUL bytes after a payload of `length` bytes: 0→0, 1→3, 2→2, 3→1. */
export function controlPadding(length: number): number {
  return (4 - (length % 4)) % 4;
}

/** One packet: length, command, payload, padding. */
export function encodeControlPacket(command: number, payload: Buffer): Buffer {
  if (payload.length > MAX_CONTROL_PAYLOAD) throw new ControlPayloadTooLong(payload.length);
  const packet = Buffer.alloc(4 + payload.length + controlPadding(payload.length));
  packet.writeUInt16BE(payload.length, 0);
  packet.writeUInt16BE(command, 2);
  payload.copy(packet, 4);
  return packet;
}

/** A whole datagram: the magic followed by already encoded packets. */
export function encodeControlDatagram(packets: readonly Buffer[]): Buffer {
  const magic = Buffer.alloc(4);
  magic.writeUInt32BE(CONTROL_MAGIC, 0);
  return Buffer.concat([magic, ...packets]);
}
