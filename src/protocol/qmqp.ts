// The QMQP request body (docs/protocol.md): message, sender, 1…1024 recipients.
import { isValidAddress } from './address.js';
import { parseInnerNetstring } from './netstring.js';

export const MAX_RECIPIENTS = 1024;

/** A parsed request.  Buffers are views into the body read from the client. */
export interface QmqpRequest {
  /** The whole request body (the client's outer netstring payload). */
  readonly body: Buffer;
  readonly message: Buffer;
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

export function parseQmqpRequest(body: Buffer): QmqpParseResult {
  const message = parseInnerNetstring(body, 0);
  if (message === undefined) return MALFORMED;
  const senderField = parseInnerNetstring(body, message.next);
  if (senderField === undefined) return MALFORMED;
  const sender = senderField.value.toString('latin1');
  if (!isValidAddress(sender)) return BAD_ADDRESS;
  const recipients: string[] = [];
  let offset = senderField.next;
  do {
    const field = parseInnerNetstring(body, offset);
    if (field === undefined) return MALFORMED;
    const recipient = field.value.toString('latin1');
    if (!isValidAddress(recipient)) return BAD_ADDRESS;
    if (recipients.length >= MAX_RECIPIENTS) return TOO_MANY;
    recipients.push(recipient);
    offset = field.next;
  } while (offset < body.length);
  return {
    kind: 'request',
    request: {
      body,
      message: message.value,
      sender,
      recipients,
      recipientBytes: body.subarray(senderField.next),
    },
  };
}
