// The QMQP request body (docs/protocol.md): message, sender, 1…1024 recipients.
import { isValidAddress } from './address.js';
import { ByteChunks } from './byte-chunks.js';
import { NETSTRING_TRAILER, encodeNetstring, netstringHeader, parseFieldHeader, parseInnerNetstring } from './netstring.js';

export const MAX_RECIPIENTS = 1024;

/** A parsed request.  Buffers are views into the body read from the client. */
export interface QmqpRequest {
  /** The whole request body (the client's outer netstring payload), as received. */
  readonly body: ByteChunks;
  /** The message, as views into the received chunks (relayed from them, never copied). */
  readonly message: ByteChunks;
  /** The envelope sender, one char per byte (ASCII after validation). */
  readonly sender: string;
  readonly recipients: readonly string[];
  /** The recipient netstrings exactly as received, for relaying verbatim. */
  readonly recipientBytes: Buffer;
}

export type QmqpParseResult =
  | { readonly kind: 'request'; readonly request: QmqpRequest }
  | { readonly kind: 'malformed' }
  | { readonly kind: 'bad-address' }
  | { readonly kind: 'too-many-recipients' };

const MALFORMED = { kind: 'malformed' } as const;
const BAD_ADDRESS = { kind: 'bad-address' } as const;
const TOO_MANY = { kind: 'too-many-recipients' } as const;
const COMMA = 0x2c;

/** Index of the first byte that is not an ASCII digit (or the length). */
function firstNonDigit(body: ByteChunks): number {
  let at = 0;
  for (const piece of body.pieces) {
    for (let i = 0; i < piece.length; i++) {
      const b = piece[i]!;
      if (b < 0x30 || b > 0x39) return at + i;
    }
    at += piece.length;
  }
  return at;
}

/**
 * Parses the request body as received.  The message stays in the received
 * chunks; only the envelope after it (sender and recipients, small) is
 * read as one buffer, copied only when it spans two chunks.
 */
export function parseQmqpRequest(input: Buffer | ByteChunks): QmqpParseResult {
  const body = Buffer.isBuffer(input) ? ByteChunks.of(input) : input;
  const header = parseFieldHeader(body.contiguous(0, firstNonDigit(body) + 1), 0);
  if (header === undefined) return MALFORMED;
  const messageEnd = header.start + header.length;
  if (!(body.length > messageEnd) || body.byteAt(messageEnd) !== COMMA) return MALFORMED;
  const envelope = body.contiguous(messageEnd + 1, body.length);
  const senderField = parseInnerNetstring(envelope, 0);
  if (senderField === undefined) return MALFORMED;
  const sender = senderField.value.toString('latin1');
  if (!isValidAddress(sender)) return BAD_ADDRESS;
  const recipients: string[] = [];
  let offset = senderField.next;
  do {
    const field = parseInnerNetstring(envelope, offset);
    if (field === undefined) return MALFORMED;
    const recipient = field.value.toString('latin1');
    if (!isValidAddress(recipient)) return BAD_ADDRESS;
    if (recipients.length >= MAX_RECIPIENTS) return TOO_MANY;
    recipients.push(recipient);
    offset = field.next;
  } while (offset < envelope.length);
  return {
    kind: 'request',
    request: {
      body,
      message: body.slice(header.start, messageEnd),
      sender,
      recipients,
      recipientBytes: envelope.subarray(senderField.next),
    },
  };
}

/**
 * A request as pieces for one gathered write: the outer netstring around
 * the message (given as chunks, not copied), the sender and the recipients.
 */
export function encodeQmqpRequest(message: readonly Buffer[], sender: string, recipients: readonly string[]): Buffer[] {
  let messageLength = 0;
  for (const chunk of message) messageLength += chunk.length;
  const envelope = [sender, ...recipients].map((a) => encodeNetstring(a)).concat(NETSTRING_TRAILER);
  const messageHeader = netstringHeader(messageLength);
  let bodyLength = messageHeader.length + messageLength + 1;
  for (const piece of envelope) bodyLength += piece.length;
  bodyLength -= 1;
  return [netstringHeader(bodyLength), messageHeader, ...message, NETSTRING_TRAILER, ...envelope];
}
