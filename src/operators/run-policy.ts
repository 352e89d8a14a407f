// Stage: a parsed mail → the policy's decision (the Lua handler's action).
import type { Observable } from '../rx.js';
import { closeFd } from '../native/linux.js';
import type { Decision, MailInput, MailSession, MailState, Policy } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Client } from '../client.js';
import { openClientPidfd } from './peer-credentials.js';

export interface PolicyRun {
  readonly session: MailSession;
  readonly decision$: Observable<Decision>;
}

/**
 * What the policy may know of the mail; the client's pidfd is opened only
 * if the policy asks (m.cgroup) and closed with the mail.  A class, not
 * an object of closures made per mail (see serve-client.ts, Connection).
 */
class ClientMail implements MailInput {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly credentials: Client['credentials'];
  private state: 'unopened' | 'open' | 'closed' = 'unopened';
  private pidfd: number | undefined = undefined;

  constructor(
    private readonly client: Client,
    request: QmqpRequest,
  ) {
    this.sender = request.sender;
    this.recipients = request.recipients;
    this.credentials = client.credentials;
  }

  peerPidfd(): number | undefined {
    if (this.state === 'unopened') {
      this.pidfd = openClientPidfd(this.client);
      this.state = 'open';
    }
    return this.state === 'open' ? this.pidfd : undefined;
  }

  closePidfd(): void {
    if (this.pidfd !== undefined) closeFd(this.pidfd);
    this.pidfd = undefined;
    this.state = 'closed';
  }
}

/** The policy's session, closing the client's pidfd with it. */
class ClientSession implements MailSession {
  readonly decision$: Observable<Decision>;

  constructor(
    private readonly inner: MailSession,
    private readonly mail: ClientMail,
  ) {
    this.decision$ = inner.decision$;
  }

  close(): MailState {
    const state = this.inner.close();
    this.mail.closePidfd();
    return state;
  }
}

/**
 * Opens the policy's session for one mail (not an operator: the stage's
 * stream is `decision$`).  `decision$` emits the handler's one decision
 * (an action with the mail's state, or `script-failed`) and completes;
 * unsubscribing before then abandons the handler (its Lua coroutine).
 * `session.close()` makes the mail object stale, closes the client's pidfd
 * if the policy opened it, and returns the mail's final state; it may be
 * called more than once.
 */
export function runPolicy(policy: Policy, client: Client, request: QmqpRequest): PolicyRun {
  const mail = new ClientMail(client, request);
  const session = new ClientSession(policy.open(client.listener.handler, mail), mail);
  return { session, decision$: session.decision$ };
}
