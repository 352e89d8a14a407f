// One connection as one stream: netstring → QMQP → policy → action →
// response → Pond log, cancelled when the client goes or the daemon stops.
//
// Every connection builds this pipeline anew, so it is kept short: each
// operator costs about 0.5–1 µs and a few hundred bytes of garbage per
// connection.  Synchronous steps (parsing the request) are plain calls
// inside the stage that needs them, races/timeouts use the fused
// operators cancelOn and idleTimeout, the end of a mail (Pond record, log
// line, metrics, answer) is the one operator finishMail, and serveClient
// itself is one Observable (not mergeMap → catchError → finalize).
import { EMPTY, Observable, tap } from '../rx.js';
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
import { finishMail, type Canceled, type MailProgress } from './finish-mail.js';
import type { MailLogger } from './pond-log.js';
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
  const { session, decision$ } = runPolicy(options.policy, client, request);
  const progress: MailProgress = { decision: undefined, relaying: false };
  return decision$.pipe(
    tap((decision) => {
      progress.decision = decision.kind === 'action' ? decision.action : 'script-failed';
      progress.relaying = decision.kind === 'action' && isRelayingAction(decision.action);
    }),
    executeAction(client, request, options),
    cancelOn(clientGone(client, unread, options.shutdown$), (reason): Canceled => ({ kind: 'canceled', reason, relayed: progress.relaying })),
    finishMail({ client, request, session, progress, mailLog: options.mailLog }),
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
 * cancel a mail in flight (no answer), as does `shutdown$`; `shutdown$`
 * also completes it, without an answer, while the request is still being
 * received.
 * Unsubscribing abandons whatever is under way; when the stream ends
 * either way the socket is destroyed and the budget share released.
 */
export function serveClient(client: Client, options: ServeOptions): Observable<never> {
  return new Observable<never>((subscriber) => {
    const { socket, listener } = client;
    gauges.connectionsInFlight++;
    const share = options.receiveBudget.open(socket);
    const failed = (e: unknown): void => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') logDomain(client.domain, `read() failed: ${systemErrorText(e)}`);
      subscriber.complete();
    };
    // complete once the request is read (or the reading ended without one) and its answer is written
    let reading = true;
    let answering = false;
    subscriber.add(
      receiveRequest(socket, share, options.timeouts.receiveIdleMs, listener.maxSize).subscribe({
        next: (read) => {
          stopKeeping(socket);
          answering = true;
          subscriber.add(
            serveRequest(client, read, options).subscribe({
              error: failed,
              complete: () => {
                answering = false;
                if (!reading) subscriber.complete();
              },
            }),
          );
        },
        error: failed,
        complete: () => {
          reading = false;
          if (!answering) subscriber.complete();
        },
      }),
    );
    // a client still sending its request when the daemon stops is dropped
    // without an answer (a mail in flight is cancelled by processMail itself,
    // with its Pond record); otherwise a client trickling bytes would hold
    // the shutdown for as long as it likes
    subscriber.add(
      options.shutdown$.subscribe(() => {
        if (!answering) subscriber.complete();
      }),
    );
    subscriber.add(() => {
      gauges.connectionsInFlight--;
      share.release();
      socket.destroy();
    });
  });
}
