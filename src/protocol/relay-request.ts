// The request qrelay sends on (qmqp.md §7): inserted headers newest first,
// the Received line, the message bytes unchanged, the current sender and
// the client's recipient netstrings verbatim.  Built as a list of pieces
// for one gathered write, so the message body is never copied.
import { NETSTRING_TRAILER, netstringHeader } from './netstring.js';
import type { QmqpRequest } from './qmqp.js';
import type { PeerCredentials } from '../native/linux.js';

/** `Received: from PID=… UID=… with QMQP\r\n`, or nothing without credentials. */
export function receivedLine(credentials: PeerCredentials | undefined): Buffer | undefined {
  if (credentials === undefined) return undefined;
  return Buffer.from(`Received: from PID=${credentials.pid} UID=${credentials.uid} with QMQP\r\n`, 'latin1');
}

/** One inserted header line, `name: value\r\n`. */
export function headerLine(name: string, value: string): Buffer {
  return Buffer.from(`${name}: ${value}\r\n`, 'latin1');
}

/** What the policy decided about the envelope and headers of one mail. */
export interface MailRewrite {
  readonly sender: string;
  /** Inserted header lines in insertion order (oldest first). */
  readonly headers: readonly Buffer[];
}

/** The message block B: headers newest first, Received, message. */
export function messageBlock(
  request: QmqpRequest,
  rewrite: MailRewrite,
  credentials: PeerCredentials | undefined,
): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = rewrite.headers.length - 1; i >= 0; i--) pieces.push(rewrite.headers[i]!);
  const received = receivedLine(credentials);
  if (received !== undefined) pieces.push(received);
  pieces.push(request.message);
  return pieces;
}

function totalLength(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/** The complete relayed QMQP request (outer netstring included), as pieces. */
export function relayRequest(
  request: QmqpRequest,
  rewrite: MailRewrite,
  credentials: PeerCredentials | undefined,
): Buffer[] {
  const block = messageBlock(request, rewrite, credentials);
  const blockLength = totalLength(block);
  const sender = Buffer.from(rewrite.sender, 'latin1');
  const inner: Buffer[] = [
    netstringHeader(blockLength),
    ...block,
    Buffer.from(`,${sender.length}:`, 'latin1'),
    sender,
    NETSTRING_TRAILER,
    request.recipientBytes,
  ];
  return [netstringHeader(totalLength(inner)), ...inner, NETSTRING_TRAILER];
}
