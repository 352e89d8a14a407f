// Reading a QMQP server's (or an exec child's) answer: one netstring of at
// most 256 bytes with the relay timeouts of docs/actions.md
import { Observable, catchError, map, throwError, throwIfEmpty } from 'rxjs';
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
