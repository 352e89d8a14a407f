// Stage: the policy's decision → the answer for the client, by carrying
// out the action (discard, reject, connect, exec, exec_raw).
import { Observable, type OperatorFunction, type Subscriber } from '../rx.js';
import type { ActionResult, RelayReport } from '../actions/action-result.js';
import { relayToServers, type RelayContext } from '../actions/failover.js';
import { runExec, runExecRaw } from '../actions/exec.js';
import { logDomain } from '../log.js';
import { isRelayingAction, type Action, type Decision } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import { messageBlock, relayRequest } from '../protocol/relay-request.js';
import { Responses, type ResponseText } from '../protocol/responses.js';
import type { Client } from '../client.js';

/** One shape for every answer (`relay` always present): the stages after this one see a single hidden class. */
export interface Answer {
  readonly response: ResponseText;
  /** A relaying action (connect, exec, exec_raw) was started (Pond traffic). */
  readonly relayed: boolean;
  /** `connect`: which server answered and how many were tried. */
  readonly relay: RelayReport | undefined;
}

/** The action's work, for the actions that have any (the others are answered at once). */
function carryOut(action: Exclude<Action, { kind: 'discard' | 'reject' }>, decision: Extract<Decision, { kind: 'action' }>, client: Client, request: QmqpRequest, context: RelayContext): Observable<ActionResult> {
  const mail = decision.mail;
  switch (action.kind) {
    case 'connect':
      return relayToServers(action, relayRequest(request, mail, client.credentials), context);
    case 'exec':
      return runExec(action, relayRequest(request, mail, client.credentials), context.timeouts);
    case 'exec_raw':
      return runExecRaw(action, messageBlock(request, mail, client.credentials), context.timeouts);
  }
}

/** Told of each decision before its action starts (like tap's observer). */
export interface DecisionObserver {
  next(decision: Decision): void;
}

/**
 * For each decision, tells `seen` of it, carries out its action and emits
 * the one Answer it leads to (`Zscript failed` for a failed handler, logged; an action's
 * failure is an answer too, never an error); the action's log lines are
 * written in the client's domain.  `discard`, `reject` and a failed
 * handler are answered within the decision's emission.  Completes when
 * the decisions complete and the actions under way have answered; errors
 * when the decisions do.  Unsubscribing abandons the action: `connect`
 * closes its downstream socket, `exec`/`exec_raw` terminate the child
 * (SIGTERM, SIGKILL after `killGraceMs`).
 *
 * The same as tap(seen) → mergeMap(decision → action.pipe(map(answer))),
 * without those operators' closures and subscribers per mail: the
 * observers are the classes below, the subscribe functions bound module
 * functions.
 */
export function executeAction(client: Client, request: QmqpRequest, context: RelayContext, seen: DecisionObserver): OperatorFunction<Decision, Answer> {
  return (actOn).bind(undefined, client, request, context, seen);
}

function actOn(client: Client, request: QmqpRequest, context: RelayContext, seen: DecisionObserver, decisions: Observable<Decision>): Observable<Answer> {
  return new Observable<Answer>(subscribeActions.bind(undefined, decisions, client, request, context, seen));
}

function subscribeActions(
  decisions: Observable<Decision>,
  client: Client,
  request: QmqpRequest,
  context: RelayContext,
  seen: DecisionObserver,
  subscriber: Subscriber<Answer>,
): void {
  subscriber.add(decisions.subscribe(new DecisionWatch(client, request, context, seen, subscriber)));
}

/** The observer of the decisions: answers each, counts the actions under way. */
class DecisionWatch {
  private running = 0;
  private decided = false;

  constructor(
    private readonly client: Client,
    private readonly request: QmqpRequest,
    private readonly context: RelayContext,
    private readonly seen: DecisionObserver,
    private readonly subscriber: Subscriber<Answer>,
  ) {}

  /**
   * The immediate answers (script failed, discarded, rejected) are new
   * objects each time, not module constants: measured in the daemon
   * (discard 2 KB x 8, 6 alternating rounds of 4 s), constants cost 50-64
   * us user CPU per mail against 45-51 for these literals.
   */
  next(decision: Decision): void {
    const { client, request, context } = this;
    this.seen.next(decision);
    if (decision.kind === 'script-failed') {
      logDomain(client.domain, decision.log);
      this.subscriber.next({ response: Responses.scriptFailed, relayed: false, relay: undefined });
      return;
    }
    const action = decision.action;
    if (action.kind === 'discard') return this.subscriber.next({ response: Responses.discarded, relayed: false, relay: undefined });
    if (action.kind === 'reject') return this.subscriber.next({ response: Responses.rejected, relayed: false, relay: undefined });
    this.running++;
    this.subscriber.add(carryOut(action, decision, client, request, context).subscribe(new ActionWatch(this, isRelayingAction(action))));
  }

  /** The decisions, or an action, failed (an action's failure is an answer, so this is a bug's error). */
  error(e: unknown): void {
    this.subscriber.error(e);
  }

  complete(): void {
    this.decided = true;
    if (this.running === 0) this.subscriber.complete();
  }

  /** An action emitted its result. */
  answer(result: ActionResult, relayed: boolean): void {
    if (result.log !== undefined) for (const line of result.log) logDomain(this.client.domain, line);
    this.subscriber.next({ response: result.response, relayed, relay: result.relay });
  }

  /** An action is over. */
  ended(): void {
    this.running--;
    if (this.decided && this.running === 0) this.subscriber.complete();
  }
}

/** The observer of one action's results. */
class ActionWatch {
  constructor(
    private readonly watch: DecisionWatch,
    private readonly relayed: boolean,
  ) {}

  next(result: ActionResult): void {
    this.watch.answer(result, this.relayed);
  }

  error(e: unknown): void {
    this.watch.error(e);
  }

  complete(): void {
    this.watch.ended();
  }
}
