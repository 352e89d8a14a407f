// Stage: a parsed mail → the policy's decision (the Lua handler's action).
import type { Observable } from 'rxjs';
import type { Decision, MailSession, Policy } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Client } from './peer-credentials.js';

export interface PolicyRun {
  readonly session: MailSession;
  readonly decision$: Observable<Decision>;
}

export function runPolicy(policy: Policy, client: Client, request: QmqpRequest): PolicyRun {
  const session = policy.open(client.listener.handler, {
    sender: request.sender,
    recipients: request.recipients,
    credentials: client.credentials,
    pidfd: undefined,
  });
  return { session, decision$: session.decision$ };
}
