// Stage: one parsed mail, from the policy to the answer: policy →
// action → Pond record, log line, metrics → response, raced against the
// client going away (docs/actions.md).
import { Observable, type Subscriber, type Subscription } from '../rx.js';
import type { ActionResult } from '../actions/action-result.js';
import type { RelayContext } from '../actions/failover.js';
import type { Client } from '../client.js';
import { logDomain } from '../log.js';
import { gauges } from '../metrics.js';
import { isRelayingAction, type Decision, type MailSession, type MailState, type Policy } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import { Responses } from '../protocol/responses.js';
import { clientGone, type CancelReason, type ShutdownHook } from './client-gone.js';
import { actionWork } from './execute-action.js';
import { recordMail } from './finish-mail.js';
import type { MailLogger, MailOutcome, MailResult } from './pond-log.js';
import { respond } from './respond.js';
import { ClientMail } from './run-policy.js';

/** What a mail needs of the daemon (serveClient's options have it). */
export interface MailContext extends RelayContext {
  readonly policy: Policy;
  readonly mailLog: MailLogger | undefined;
}

/**
 * One parsed mail: opens the policy's session (the handler runs on
 * subscription), carries out the action it decides, then sends the Pond
 * record to `mailLog`, writes the log line, counts the metrics and writes
 * the answer (respond).  Emits nothing; completes once the answer is
 * written.  The mail is cancelled, without an answer (the Pond record and
 * the log line say `canceled`, or `client error`), when the client sends
 * more bytes (at once if `unread` holds some), half-closes, closes or its
 * socket fails, or when the daemon shuts down (`shutdown.onShutdown`):
 * unless the answer was ready at once (discard, reject, a failed handler,
 * a relay that failed to start), which wins.  Completes without records
 * when the decision, or the action, completes without a value; errors
 * when either errors (a bug: failures are answers).  Counts the mail in
 * `gauges.mailsInFlight` while subscribed.  Unsubscribing abandons the
 * handler (its Lua coroutine) or the action (`connect` closes its
 * downstream socket, `exec`/`exec_raw` terminate the child) and stops
 * watching the client; either way the session is closed (the mail object
 * goes stale, a pidfd the policy opened is closed).
 *
 * It was decision$ → executeAction (tap + mergeMap) → cancelOn (race +
 * take(1)) → finishMail (map + mergeMap + finalize): three operators, each
 * a Subscriber, an observer object and a teardown per mail, and a wrapper
 * of the session.  One MailRun does their work now: the subscriptions
 * left are the policy's decision$, the action's work, the client watch
 * and the answer's write.  Measured against the three operators (2 KB x
 * 8, a sampling heap profile of the daemon with the objects collected):
 * 19.7 -> 17.4 KB of heap allocated per relayed mail, 12.9 -> 11.2 KB per
 * discarded one; CPU per mail in a same-run bench A/B (5 rounds, a busy
 * machine), medians of the per-round ratios: relay 0.89, discard 0.84.
 */
export function processMail(client: Client, request: QmqpRequest, unread: Buffer, context: MailContext, shutdown: ShutdownHook): Observable<never> {
  // a bound module function, not a literal per mail (see serve-client.ts, Connection)
  return new Observable<never>(subscribeMail.bind(undefined, client, request, unread, context, shutdown));
}

function subscribeMail(client: Client, request: QmqpRequest, unread: Buffer, context: MailContext, shutdown: ShutdownHook, subscriber: Subscriber<never>): MailRun {
  const run = new MailRun(client, request, context, subscriber);
  run.start(unread, shutdown);
  return run;
}

/**
 * One mail's subscription: the observer of the policy's decision (next,
 * error, complete), the end of the mail, and the stream's teardown
 * (unsubscribe).  Methods, not literals made per mail (see serve-client.ts,
 * Connection).
 */
class MailRun {
  private readonly mail: ClientMail;
  private readonly session: MailSession;
  /** What the policy decided, once it did. */
  private decision: MailOutcome['decision'] = undefined;
  /** A relaying action was started: Pond traffic counts a mail cancelled while relaying as relayed. */
  private relaying = false;
  /** The decision came (the handler is done). */
  private decided = false;
  /** An action's work is under way. */
  private working = false;
  /** Answered or cancelled: the records are written; nothing more is taken. */
  private ended = false;
  /** The mail's state once the session is closed. */
  private closed: MailState | undefined = undefined;
  private decision$: Subscription | undefined = undefined;
  private work: Subscription | undefined = undefined;
  private gone: Subscription | undefined = undefined;

  constructor(
    private readonly client: Client,
    private readonly request: QmqpRequest,
    private readonly context: MailContext,
    private readonly subscriber: Subscriber<never>,
  ) {
    this.mail = new ClientMail(client, request);
    this.session = context.policy.open(client.listener.handler, this.mail);
    gauges.mailsInFlight++;
  }

  /** The handler first, as race() subscribes its first source first: an answer ready at once wins; then the client watch. */
  start(unread: Buffer, shutdown: ShutdownHook): void {
    const decision$ = this.session.decision$.subscribe(this);
    if (this.ended) decision$.unsubscribe();
    else this.decision$ = decision$;
    if (this.ended || this.subscriber.closed) return;
    const gone = clientGone(this.client, unread, shutdown).subscribe(new ClientWatch(this));
    if (this.ended) gone.unsubscribe();
    else this.gone = gone;
  }

  /**
   * The policy decided: `discard`, `reject` and a failed handler (logged)
   * are answered at once; the other actions start their work.  The
   * immediate results are new objects each time, not module constants:
   * measured in the daemon (discard 2 KB x 8, 6 alternating rounds of 4
   * s), constants cost 50-64 us user CPU per mail against 45-51 for
   * literals.
   */
  next(decision: Decision): void {
    if (this.ended) return;
    if (decision.kind === 'script-failed') {
      this.decision = 'script-failed';
      logDomain(this.client.domain, decision.log);
      this.end({ kind: 'answered', response: Responses.scriptFailed, relayed: false });
      return;
    }
    const action = decision.action;
    this.decision = action;
    if (action.kind === 'discard') return this.end({ kind: 'answered', response: Responses.discarded, relayed: false });
    if (action.kind === 'reject') return this.end({ kind: 'answered', response: Responses.rejected, relayed: false });
    this.relaying = isRelayingAction(action);
    this.working = true;
    const work = actionWork(action, decision.mail, this.client, this.request, this.context).subscribe(new ActionWatch(this));
    if (this.ended) work.unsubscribe();
    else this.work = work;
  }

  /** The decision, or the action, failed (failures are answers: this is a bug's error). */
  error(e: unknown): void {
    if (!this.ended) this.subscriber.error(e);
  }

  /** The decision is complete: without an action under way or an answer, so is the mail (no records). */
  complete(): void {
    this.decided = true;
    if (!this.working && !this.ended) this.subscriber.complete();
  }

  /** The action's result: its log lines in the client's domain, then the answer. */
  answer(result: ActionResult): void {
    if (this.ended) return;
    if (result.log !== undefined) for (const line of result.log) logDomain(this.client.domain, line);
    const { response, relay } = result;
    this.end(relay === undefined ? { kind: 'answered', response, relayed: this.relaying } : { kind: 'answered', response, relayed: this.relaying, relay });
  }

  /** The action's work is over: without an answer, once the decision is complete, so is the mail (no records). */
  worked(): void {
    this.working = false;
    if (this.decided && !this.ended) this.subscriber.complete();
  }

  /** The client went away (or the daemon shuts down) before the answer. */
  canceled(reason: CancelReason): void {
    if (!this.ended) this.end({ kind: 'canceled', reason, relayed: this.relaying });
  }

  /**
   * The mail is over: closes the session, writes its records, stops the
   * work and the client watch, then writes the answer (a cancelled mail
   * gets none and completes at once).  (Literals for the result, not `{
   * kind, ...answer }`: on Node 20 a spread copy with a property added gets
   * a new hidden class every time.)
   */
  private end(result: MailResult): void {
    this.ended = true;
    const { client, request } = this;
    recordMail({ client, request, mail: this.close(), decision: this.decision, result }, this.context.mailLog);
    // respond emits nothing and never errors: its completion is this stream's
    if (result.kind === 'answered') respond(client, result.response).subscribe(this.subscriber);
    else this.subscriber.complete();
    this.release();
  }

  /** The session's final state (closing it, and the client's pidfd, the first time). */
  private close(): MailState {
    if (this.closed === undefined) {
      this.closed = this.session.close();
      this.mail.closePidfd();
    }
    return this.closed;
  }

  /** Abandons the handler and the action, stops watching the client. */
  private release(): void {
    const { decision$, work, gone } = this;
    this.decision$ = this.work = this.gone = undefined;
    decision$?.unsubscribe();
    work?.unsubscribe();
    gone?.unsubscribe();
  }

  /** The stream ends (or is dropped): everything above is released, the session closed. */
  unsubscribe(): void {
    this.ended = true;
    this.release();
    gauges.mailsInFlight--;
    this.close();
  }
}

/** The observer of the action's result. */
class ActionWatch {
  constructor(private readonly run: MailRun) {}

  next(result: ActionResult): void {
    this.run.answer(result);
  }

  error(e: unknown): void {
    this.run.error(e);
  }

  complete(): void {
    this.run.worked();
  }
}

/** The observer of clientGone. */
class ClientWatch {
  constructor(private readonly run: MailRun) {}

  next(reason: CancelReason): void {
    this.run.canceled(reason);
  }
}
