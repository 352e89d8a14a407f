// Stage: a parsed mail → the policy's decision (the Lua handler's action).
import type { Observable } from '../rx.js';
import { closeFd } from '../native/linux.js';
import type { Decision, MailSession, Policy } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Client } from '../client.js';
import { openClientPidfd } from './peer-credentials.js';

export interface PolicyRun {
  readonly session: MailSession;
  readonly decision$: Observable<Decision>;
}

/** The client's pidfd, opened only if the policy asks (m.cgroup), closed with the mail. */
function lazyPidfd(client: Client): { get(): number | undefined; close(): void } {
  let state: 'unopened' | 'open' | 'closed' = 'unopened';
  let pidfd: number | undefined;
  return {
    get: () => {
      if (state === 'unopened') {
        pidfd = openClientPidfd(client);
        state = 'open';
      }
      return state === 'open' ? pidfd : undefined;
    },
    close: () => {
      if (pidfd !== undefined) closeFd(pidfd);
      pidfd = undefined;
      state = 'closed';
    },
  };
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
  const pidfd = lazyPidfd(client);
  const inner = policy.open(client.listener.handler, {
    sender: request.sender,
    recipients: request.recipients,
    credentials: client.credentials,
    peerPidfd: pidfd.get,
  });
  const session: MailSession = {
    decision$: inner.decision$,
    close: () => {
      const state = inner.close();
      pidfd.close();
      return state;
    },
  };
  return { session, decision$: session.decision$ };
}
