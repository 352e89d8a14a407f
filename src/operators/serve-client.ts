// One connection as one stream: netstring → QMQP → policy → action →
// response → Pond log, cancelled when the client goes or the daemon stops.
import { EMPTY, Observable, catchError, finalize, map, merge, mergeMap, of, race, take, tap, timeout } from 'rxjs';
import { logDomain } from '../log.js';
import { isRelayingAction, type Policy } from '../policy.js';
import { describeNetstringError } from '../protocol/netstring-reader.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Timeouts } from '../timeouts.js';
import { socketChunks } from '../streams/socket-chunks.js';
import { systemErrorText } from '../native/linux.js';
import { clientGone, type CancelReason } from './client-gone.js';
import { decodeNetstring } from './decode-netstring.js';
import { executeAction } from './execute-action.js';
import { parseFailureResponse, parseQmqp } from './parse-qmqp.js';
import type { Client } from './peer-credentials.js';
import { pondLog, type MailOutcome, type MailLogger } from './pond-log.js';
import { respond } from './respond.js';
import { runPolicy } from './run-policy.js';

export interface ServeOptions {
  readonly policy: Policy;
  readonly mailLog: MailLogger | undefined;
  /** Emits when the daemon shuts down: mails in flight are cancelled. */
  readonly shutdown$: Observable<unknown>;
  readonly timeouts: Timeouts;
}

function processMail(client: Client, request: QmqpRequest, unread: Buffer, options: ServeOptions): Observable<never> {
  const { session, decision$ } = runPolicy(options.policy, client, request);
  // Pond traffic counts a mail cancelled while relaying as relayed.
  let relaying = false;
  const answered$ = decision$.pipe(
    tap((decision) => (relaying = decision.kind === 'action' && isRelayingAction(decision.action))),
    executeAction(client, request, options.timeouts),
    map((answer) => ({ kind: 'answered' as const, ...answer })),
  );
  const canceled$ = merge(clientGone(client, unread), options.shutdown$.pipe(map((): CancelReason => 'canceled'))).pipe(
    map((reason) => ({ kind: 'canceled' as const, reason, relayed: relaying })),
  );
  return race(answered$, canceled$).pipe(
    take(1),
    map((result): MailOutcome => ({ client, request, mail: session.close(), result })),
    pondLog(options.mailLog),
    mergeMap((outcome) => (outcome.result.kind === 'answered' ? respond(client, outcome.result.response) : EMPTY)),
    finalize(() => session.close()),
  );
}

/** Serves the one request of a connection; never errors. */
export function serveClient(client: Client, options: ServeOptions): Observable<never> {
  const { socket, listener } = client;
  return socketChunks(socket).pipe(
    timeout({ each: options.timeouts.receiveIdleMs, with: () => EMPTY }),
    decodeNetstring(listener.maxSize),
    mergeMap((read) => {
      if (read.kind !== 'complete') {
        logDomain(client.domain, describeNetstringError(read));
        return EMPTY;
      }
      return of(read.payload).pipe(
        parseQmqp(),
        mergeMap((parsed) =>
          parsed.kind === 'request' ? processMail(client, parsed.request, read.unread, options) : respond(client, parseFailureResponse(parsed)),
        ),
      );
    }),
    catchError((e: unknown) => {
      if ((e as NodeJS.ErrnoException).code !== 'ECONNRESET') logDomain(client.domain, `read() failed: ${systemErrorText(e)}`);
      return EMPTY;
    }),
    finalize(() => socket.destroy()),
  );
}
