// Reading a QMQP server's (or an exec child's) answer: one netstring of at
// most 256 bytes with the relay timeouts of docs/actions.md
import { Observable, catchError, map, throwError, throwIfEmpty } from '../rx.js';
import { idleTimeout } from '../streams/idle-timeout.js';
import { decodeNetstring } from '../streams/decode-netstring.js';
import { describeNetstringError, type NetstringReadResult } from '../protocol/netstring-reader.js';
import { Responses } from '../protocol/responses.js';
import { systemErrorText } from '../native/linux.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult } from './action-result.js';
import { relayFailed } from './send-request.js';

/** The longest answer netstring read. */
export const MAX_RESPONSE = 256;

/**
 * The most bytes of an answer the reader looks at before it decides: a
 * header of at most 32 bytes up to the colon, then at most MAX_RESPONSE
 * bytes and the comma.  Bytes after these change nothing.
 */
export const ANSWER_DECIDED_WITHIN = 32 + MAX_RESPONSE + 1;

/** EOF before the answer was complete. */
export const PREMATURE_CLOSE = 'Peer closed the socket prematurely';

const MALFORMED_RESPONSE: ActionResult = { response: Responses.malformedRelayResponse, log: ['Malformed QMQP response'] };

/**
 * What the client gets for the answer netstring `result`: the answer itself
 * (K, Z or D), or `Zmalformed relay response`; a broken netstring is an
 * ActionFailure (`Zrelay failed`), returned, not thrown.
 */
export function qmqpAnswer(result: NetstringReadResult): ActionResult | ActionFailure {
  if (result.kind !== 'complete') return relayFailed(describeNetstringError(result));
  const payload = result.payload.contiguous(0, result.payload.length);
  const code = payload[0];
  if (code !== 0x4b && code !== 0x5a && code !== 0x44) return MALFORMED_RESPONSE;
  return { response: payload.toString('latin1') };
}

/**
 * The answer when `chunk`'s first `length` bytes are exactly one complete
 * netstring of at most 256 bytes (`N:payload,`, how servers answer), else
 * undefined: then the NetstringReader decides, byte for byte as the
 * original reads.  Saves the reader's allocations on every relayed mail;
 * same result.
 */
export function wholeAnswer(chunk: Buffer, length: number = chunk.length): ActionResult | undefined {
  const end = length - 1;
  let announced = 0;
  let colon = 0;
  for (; colon < end; colon++) {
    const b = chunk[colon]!;
    if (b < 0x30 || b > 0x39) break;
    announced = announced * 10 + (b - 0x30);
    if (announced > MAX_RESPONSE) return undefined;
  }
  // the original looks for the colon in the first 32 bytes only
  if (colon === 0 || colon >= 32 || chunk[colon] !== 0x3a || colon + announced + 1 !== end || chunk[end] !== 0x2c) return undefined;
  const code = chunk[colon + 1];
  if (code !== 0x4b && code !== 0x5a && code !== 0x44) return MALFORMED_RESPONSE;
  return { response: chunk.toString('latin1', colon + 1, end) };
}

/** The validated answer from a stream of response chunks. */
export function readQmqpResponse(
  chunks: Observable<Buffer>,
  timeouts: Pick<Timeouts, 'firstResponseByteMs' | 'betweenResponseChunksMs'>,
): Observable<ActionResult> {
  return chunks.pipe(
    idleTimeout({
      first: timeouts.firstResponseByteMs,
      each: timeouts.betweenResponseChunksMs,
      with: () => throwError(() => relayFailed('Connect timeout')),
    }),
    catchError((e: unknown) => throwError(() => (e instanceof ActionFailure ? e : relayFailed(`Failed to receive: ${systemErrorText(e)}`)))),
    decodeNetstring(MAX_RESPONSE),
    throwIfEmpty(() => relayFailed(PREMATURE_CLOSE)),
    map((result): ActionResult => {
      const answer = qmqpAnswer(result);
      if (answer instanceof ActionFailure) throw answer;
      return answer;
    }),
  );
}
