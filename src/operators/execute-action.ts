// Stage: the policy's decision → the answer for the client, by carrying
// out the action (discard, reject, connect, exec, exec_raw).
import { mergeMap, map, of, type Observable, type OperatorFunction } from '../rx.js';
import type { ActionResult, RelayReport } from '../actions/action-result.js';
import { relayToServers, type RelayContext } from '../actions/failover.js';
import { runExec, runExecRaw } from '../actions/exec.js';
import { logDomain } from '../log.js';
import { isRelayingAction, type Action, type Decision, type MailState } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import { messageBlock, relayRequest } from '../protocol/relay-request.js';
import { Responses, type ResponseText } from '../protocol/responses.js';
import type { Client } from '../client.js';

export interface Answer {
  readonly response: ResponseText;
  /** A relaying action (connect, exec, exec_raw) was started (Pond traffic). */
  readonly relayed: boolean;
  /** `connect`: which server answered and how many were tried. */
  readonly relay?: RelayReport;
}

function carryOut(action: Action, mail: MailState, client: Client, request: QmqpRequest, context: RelayContext): Observable<ActionResult> {
  switch (action.kind) {
    case 'discard':
      return of({ response: Responses.discarded });
    case 'reject':
      return of({ response: Responses.rejected });
    case 'connect':
      return relayToServers(action, relayRequest(request, mail, client.credentials), context);
    case 'exec':
      return runExec(action, relayRequest(request, mail, client.credentials), context.timeouts);
    case 'exec_raw':
      return runExecRaw(action, messageBlock(request, mail, client.credentials), context.timeouts);
  }
}

/**
 * For each decision, carries out its action and emits the one Answer it
 * leads to (`Zscript failed` for a failed handler, logged; an action's
 * failure is an answer too, never an error); the action's log lines are
 * written in the client's domain.  Completes when the decisions complete
 * and the action under way has answered.  Unsubscribing abandons the
 * action: `connect` closes its downstream socket, `exec`/`exec_raw`
 * terminate the child (SIGTERM, SIGKILL after `killGraceMs`).
 */
export function executeAction(client: Client, request: QmqpRequest, context: RelayContext): OperatorFunction<Decision, Answer> {
  return mergeMap((decision) => {
    if (decision.kind === 'script-failed') {
      logDomain(client.domain, decision.log);
      return of({ response: Responses.scriptFailed, relayed: false });
    }
    const relayed = isRelayingAction(decision.action);
    return carryOut(decision.action, decision.mail, client, request, context).pipe(
      map((result): Answer => {
        if (result.log !== undefined) for (const line of result.log) logDomain(client.domain, line);
        return result.relay === undefined ? { response: result.response, relayed } : { response: result.response, relayed, relay: result.relay };
      }),
    );
  });
}
