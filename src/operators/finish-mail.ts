// Stage: the end of a mail: its Pond record (docs/pond.md), its log line
// (docs/logging.md) and metrics (docs/metrics.md), then the answer to the
// client (docs/protocol.md).
import { Observable, type OperatorFunction, type Subscriber } from '../rx.js';
import type { Client } from '../client.js';
import { gauges } from '../metrics.js';
import { isRelayingAction, type Decision, type MailSession } from '../policy.js';
import type { CancelReason } from './client-gone.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Answer } from './execute-action.js';
import { logMailOutcome } from './mail-log.js';
import { countMailOutcome } from './mail-metrics.js';
import type { MailLogger, MailOutcome, MailResult } from './pond-log.js';
import { respond } from './respond.js';

/** A mail cancelled before it was answered (what cancelOn makes of the client going). */
export type Canceled = Extract<MailResult, { readonly kind: 'canceled' }>;

/**
 * What is known of a mail while its action runs: told of the policy's
 * decision (executeAction's `seen`), and what cancelOn makes of the
 * client going (`progress.canceled`).  A class, not closures made per
 * mail (see serve-client.ts, Connection).
 */
export class MailProgress {
  /** What the policy decided, once it did. */
  decision: MailOutcome['decision'] = undefined;
  /** A relaying action was started: Pond traffic counts a mail cancelled while relaying as relayed. */
  relaying = false;

  /** The policy decided. */
  next(decision: Decision): void {
    this.decision = decision.kind === 'action' ? decision.action : 'script-failed';
    this.relaying = decision.kind === 'action' && isRelayingAction(decision.action);
  }

  /** The mail was cancelled before it was answered. */
  canceled(reason: CancelReason): Canceled {
    return { kind: 'canceled', reason, relayed: this.relaying };
  }
}

export interface MailEnd {
  readonly client: Client;
  readonly request: QmqpRequest;
  readonly session: MailSession;
  readonly progress: MailProgress;
  readonly mailLog: MailLogger | undefined;
}

/** The MailResult of an answered mail (literals, not `{ kind, ...answer }`: on Node 20 a spread copy with a property added gets a new hidden class every time). */
function answered({ response, relayed, relay }: Answer): MailResult {
  return relay === undefined ? { kind: 'answered', response, relayed } : { kind: 'answered', response, relayed, relay };
}

/**
 * Ends a mail with the source's first value (its Answer, or Canceled):
 * closes the session (the mail's final state), sends the Pond record to
 * `mailLog`, writes the log line, counts the metrics, then writes the
 * answer (respond; a cancelled mail gets none).  Emits nothing; completes
 * once the answer is written, right after the records for a cancelled
 * mail, or when the source completes without a value.  Errors with the
 * source.  Counts the mail in `gauges.mailsInFlight` while subscribed.
 * Unsubscribing unsubscribes from the source (abandoning its work) or
 * stops waiting for the write; either way the session is closed.
 *
 * The same as map(outcome) → pondLog → mergeMap(log line, metrics,
 * respond) → finalize, in one operator: every mail goes through it.
 */
export function finishMail(end: MailEnd): OperatorFunction<Answer | Canceled, never> {
  return finishWith.bind(undefined, end);
}

function finishWith(end: MailEnd, source: Observable<Answer | Canceled>): Observable<never> {
  return new Observable<never>(subscribeFinish.bind(undefined, end, source));
}

function subscribeFinish(end: MailEnd, source: Observable<Answer | Canceled>, subscriber: Subscriber<never>): void {
  gauges.mailsInFlight++;
  const ending = new MailEnding(end, subscriber);
  subscriber.add(source.subscribe(ending));
  subscriber.add(ending);
}

/** The observer of the mail's Answer or Canceled, and the stream's teardown (methods, not literals per mail: see MailProgress). */
class MailEnding {
  private ended = false;

  constructor(
    private readonly end: MailEnd,
    private readonly subscriber: Subscriber<never>,
  ) {}

  next(value: Answer | Canceled): void {
    if (this.ended) return;
    this.ended = true;
    const { end, subscriber } = this;
    const result: MailResult = 'kind' in value ? value : answered(value);
    const outcome: MailOutcome = { client: end.client, request: end.request, mail: end.session.close(), decision: end.progress.decision, result };
    end.mailLog?.log(outcome);
    logMailOutcome(outcome);
    countMailOutcome(outcome);
    // respond emits nothing and never errors: its completion is this stream's
    if (result.kind === 'answered') respond(end.client, result.response).subscribe(subscriber);
    else subscriber.complete();
  }

  error(e: unknown): void {
    this.subscriber.error(e);
  }

  complete(): void {
    if (!this.ended) this.subscriber.complete();
  }

  unsubscribe(): void {
    gauges.mailsInFlight--;
    this.end.session.close();
  }
}
