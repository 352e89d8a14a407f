// The mail as the policy sees it (processMail opens the policy's session with it).
import { closeFd } from '../native/linux.js';
import type { MailInput } from '../policy.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { Client } from '../client.js';
import { openClientPidfd } from './peer-credentials.js';

/**
 * What the policy may know of the mail; the client's pidfd is opened only
 * if the policy asks (m.cgroup) and closed with the mail (closePidfd, by
 * processMail after it closed the session).  A class, not
 * an object of closures made per mail (see serve-client.ts, Connection).
 */
export class ClientMail implements MailInput {
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
