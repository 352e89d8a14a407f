// Stage: the policy's decision → the answer for the client, by carrying
// out the action (discard, reject, connect, exec, exec_raw).
import { Observable, of, type OperatorFunction } from '../rx.js';
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

/** The answer for an action's result; its log lines are written in the client's domain. */
function toAnswer(result: ActionResult, relayed: boolean, client: Client): Answer {
  if (result.log !== undefined) for (const line of result.log) logDomain(client.domain, line);
  return result.relay === undefined ? { response: result.response, relayed } : { response: result.response, relayed, relay: result.relay };
}

/**
 * For each decision, carries out its action and emits the one Answer it
 * leads to (`Zscript failed` for a failed handler, logged; an action's
 * failure is an answer too, never an error); the action's log lines are
 * written in the client's domain.  Completes when the decisions complete
 * and the actions under way have answered; errors with the source or an
 * action.  Unsubscribing abandons the actions: `connect` closes its
 * downstream socket, `exec`/`exec_raw` terminate the child (SIGTERM,
 * SIGKILL after `killGraceMs`).
 *
 * The same as mergeMap(decision => action.pipe(map(toAnswer))), in one
 * operator: every mail goes through it once, and mergeMap with an inner
 * map costs about twenty closures and a dozen objects per mail.
 */
export function executeAction(client: Client, request: QmqpRequest, context: RelayContext): OperatorFunction<Decision, Answer> {
  return (source) =>
    new Observable<Answer>((subscriber) => {
      let decisionsDone = false;
      let running = 0;
      const actionDone = (): void => {
        if (--running === 0 && decisionsDone) subscriber.complete();
      };
      subscriber.add(
        source.subscribe({
          next: (decision) => {
            if (decision.kind === 'script-failed') {
              logDomain(client.domain, decision.log);
              subscriber.next({ response: Responses.scriptFailed, relayed: false });
              return;
            }
            const relayed = isRelayingAction(decision.action);
            let action: Observable<ActionResult>;
            try {
              action = carryOut(decision.action, decision.mail, client, request, context);
            } catch (e) {
              // as mergeMap does: a throwing project is an error of the stream
              subscriber.error(e);
              return;
            }
            running++;
            subscriber.add(
              action.subscribe({
                next: (result) => {
                  // as map does: a throw on the way is an error of the stream
                  try {
                    subscriber.next(toAnswer(result, relayed, client));
                  } catch (e) {
                    subscriber.error(e);
                  }
                },
                error: (e: unknown) => subscriber.error(e),
                complete: actionDone,
              }),
            );
          },
          error: (e: unknown) => subscriber.error(e),
          complete: () => {
            decisionsDone = true;
            if (running === 0) subscriber.complete();
          },
        }),
      );
    });
}
