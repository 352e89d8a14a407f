// One connection as one stream: netstring → QMQP → policy → action →
// response → Pond log, cancelled when the client goes or the daemon stops.
//
// Every connection builds this pipeline anew, so it is kept short: each
// operator costs about 0.5–1 µs and a few hundred bytes of garbage per
// connection.  Synchronous steps (parsing the request) are plain calls
// inside the stage that needs them, and races/timeouts use the fused
// operators cancelOn and idleTimeout.
import { EMPTY, Observable, catchError, finalize, map, mergeMap, tap } from 'rxjs';
import { logDomain } from '../log.js';
import { isRelayingAction, type Policy } from '../policy.js';
import { describeNetstringError, type NetstringReadResult } from '../protocol/netstring-reader.js';
import { parseQmqpRequest, type QmqpRequest } from '../protocol/qmqp.js';
import type { ServerBackoff } from '../actions/server-backoff.js';
import { stopKeeping } from '../streams/client-socket.js';
import { systemErrorText } from '../native/linux.js';
import type { ReceiveBudget } from '../streams/receive-budget.js';
import type { Timeouts } from '../timeouts.js';
import { cancelOn } from './cancel-on.js';
import { clientGone } from './client-gone.js';
import { executeAction } from './execute-action.js';
import { parseFailureResponse } from './parse-qmqp.js';
import { receiveRequest } from './receive-request.js';
import type { Client } from '../client.js';
import { gauges } from '../metrics.js';
import { messageTooLarge } from '../protocol/responses.js';
import { logMailOutcome } from './mail-log.js';
import { countMailOutcome } from './mail-metrics.js';
import { pondLog, type MailOutcome, type MailLogger, type MailResult } from './pond-log.js';
import { respond } from './respond.js';
import { runPolicy } from './run-policy.js';

export interface ServeOptions {
  readonly policy: Policy;
  readonly mailLog: MailLogger | undefined;
  /** Emits when the daemon shuts down: mails in flight are cancelled. */
  readonly shutdown$: Observable<unknown>;
  readonly timeouts: Timeouts;
  /** Which downstream servers `connect` skips for now (per process). */
  readonly backoff: ServerBackoff;
  /** Request bytes all connections may hold before the largest stop being read. */
  readonly receiveBudget: ReceiveBudget;
}

/**
 * One parsed mail: policy → action → Pond record, log line, metrics →
 * response.  Emits nothing; completes once the answer is written, or at
 * once when the mail is cancelled (the client sent more or closed its
 * side, its socket failed, or `shutdown$` emitted: then no answer is
 * written, the Pond record says `canceled`).  Never errors.  Unsubscribing
 * abandons the handler or the action; either way the mail session is
 * closed (the mail object goes stale, a pidfd is closed).
 */
function processMail(client: Client, request: QmqpRequest, unread: Buffer, options: ServeOptions): Observable<never> {
  gauges.mailsInFlight++;
  const { session, decision$ } = runPolicy(options.policy, client, request);
  // Pond traffic counts a mail cancelled while relaying as relayed.
  let relaying = false;
  let decided: MailOutcome['decision'];
  return decision$.pipe(
    tap((decision) => {
      decided = decision.kind === 'action' ? decision.action : 'script-failed';
      relaying = decision.kind === 'action' && isRelayingAction(decision.action);
    }),
    executeAction(client, request, options),
    map((answer): MailResult => ({ kind: 'answered', ...answer })),
    cancelOn(clientGone(client, unread, options.shutdown$), (reason): MailResult => ({ kind: 'canceled', reason, relayed: relaying })),
    map((result): MailOutcome => ({ client, request, mail: session.close(), decision: decided, result })),
    pondLog(options.mailLog),
    mergeMap((outcome) => {
      // the line on stderr and the metrics (no extra operators: this pipeline is built per connection)
      logMailOutcome(outcome);
      countMailOutcome(outcome);
      return outcome.result.kind === 'answered' ? respond(client, outcome.result.response) : EMPTY;
    }),
    finalize(() => {
      gauges.mailsInFlight--;
      session.close();
    }),
  );
}

/** The answer to one received netstring: a processed mail, an immediate D, or nothing (broken framing). */
function serveRequest(client: Client, read: NetstringReadResult, options: ServeOptions): Observable<never> {
  if (read.kind !== 'complete') {
    logDomain(client.domain, describeNetstringError(read));
    // a client still reading learns why (the original closes silently)
    return read.kind === 'too-large' ? respond(client, messageTooLarge(client.listener.maxSize)) : EMPTY;
  }
  const parsed = parseQmqpRequest(read.payload);
  return parsed.kind === 'request' ? processMail(client, parsed.request, read.unread, options) : respond(client, parseFailureResponse(parsed));
}

/**
 * Serves the one request of a connection: reads one netstring (counted
 * against the receive budget, at most `listener.maxSize` bytes), answers
 * it (a processed mail, or an immediate D for a request that is too large
 * or does not parse as QMQP) and closes the connection.  Emits nothing and
 * never errors; completes when the answer is written, or without an answer
 * when the client is silent for `receiveIdleMs` (while the budget does not
 * hold it back), closes before the netstring is complete, sends a
 * malformed netstring, or its socket fails (logged unless it was a reset).
 * Bytes sent after the request, or the client's end of the connection,
 * cancel a mail in flight (no answer), as does `shutdown$`.
 * Unsubscribing abandons whatever is under way; when the stream ends
 * either way the socket is destroyed and the budget share released.
 */
export function serveClient(client: Client, options: ServeOptions): Observable<never> {
  const { socket, listener } = client;
  gauges.connectionsInFlight++;
  const share = options.receiveBudget.open(socket);
  return receiveRequest(socket, share, options.timeouts.receiveIdleMs, listener.maxSize).pipe(
    mergeMap((read) => {
      stopKeeping(socket);
      return serveRequest(client, read, options);
    }),
    catchError((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') logDomain(client.domain, `read() failed: ${systemErrorText(e)}`);
      return EMPTY;
    }),
    finalize(() => {
      gauges.connectionsInFlight--;
      share.release();
      socket.destroy();
    }),
  );
}
