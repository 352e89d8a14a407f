// Stage: the policy's decision → the answer for the client, by carrying
// out the action (discard, reject, connect, exec, exec_raw).
import { mergeMap, map, of, tap, type Observable, type OperatorFunction } from 'rxjs';
import type { ActionResult } from '../actions/action-result.js';
import { relayToServer } from '../actions/connect.js';
import { runExec, runExecRaw } from '../actions/exec.js';
import { logDomain } from '../log.js';
import { isRelayingAction, type Action, type Decision, type MailState } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import { messageBlock, relayRequest } from '../protocol/relay-request.js';
import { Responses, type ResponseText } from '../protocol/responses.js';
import type { Timeouts } from '../timeouts.js';
import type { Client } from './peer-credentials.js';

export interface Answer {
  readonly response: ResponseText;
  /** A relaying action (connect, exec, exec_raw) was started (Pond traffic). */
  readonly relayed: boolean;
}

function carryOut(action: Action, mail: MailState, client: Client, request: QmqpRequest, timeouts: Timeouts): Observable<ActionResult> {
  switch (action.kind) {
    case 'discard':
      return of({ response: Responses.discarded });
    case 'reject':
      return of({ response: Responses.rejected });
    case 'connect':
      return relayToServer(action.address, relayRequest(request, mail, client.credentials), timeouts);
    case 'exec':
      return runExec(action, relayRequest(request, mail, client.credentials), timeouts);
    case 'exec_raw':
      return runExecRaw(action, messageBlock(request, mail, client.credentials), timeouts);
  }
}

export function executeAction(client: Client, request: QmqpRequest, timeouts: Timeouts): OperatorFunction<Decision, Answer> {
  return mergeMap((decision) => {
    if (decision.kind === 'script-failed') {
      logDomain(client.domain, decision.log);
      return of({ response: Responses.scriptFailed, relayed: false });
    }
    const relayed = isRelayingAction(decision.action);
    return carryOut(decision.action, decision.mail, client, request, timeouts).pipe(
      tap((result) => result.log?.forEach((line) => logDomain(client.domain, line))),
      map((result) => ({ response: result.response, relayed })),
    );
  });
}
