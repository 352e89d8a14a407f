// The work of an action that has any (connect, exec, exec_raw): the
// policy's decision → the Observable that carries it out (processMail
// subscribes it; discard and reject are answered without one).
import type { Observable } from '../rx.js';
import type { ActionResult } from '../actions/action-result.js';
import { relayToServers, type RelayContext } from '../actions/failover.js';
import { runExec, runExecRaw } from '../actions/exec.js';
import type { Action, MailState } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import { messageBlock, relayRequest } from '../protocol/relay-request.js';
import type { Client } from '../client.js';

/**
 * Carries out `action` for the mail in `state` (the one the action carried)
 * on subscription; emits its one result (an action's failure is a result
 * too, never an error), then completes.  Unsubscribing abandons it:
 * `connect` closes its downstream socket, `exec`/`exec_raw` terminate the
 * child (SIGTERM, SIGKILL after `killGraceMs`).
 */
export function actionWork(action: Exclude<Action, { kind: 'discard' | 'reject' }>, state: MailState, client: Client, request: QmqpRequest, context: RelayContext): Observable<ActionResult> {
  switch (action.kind) {
    case 'connect':
      return relayToServers(action, relayRequest(request, state, client.credentials), context);
    case 'exec':
      return runExec(action, relayRequest(request, state, client.credentials), context.timeouts);
    case 'exec_raw':
      return runExecRaw(action, messageBlock(request, state, client.credentials), context.timeouts);
  }
}
