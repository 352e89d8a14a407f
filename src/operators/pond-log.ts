// One log record per processed mail (docs/pond.md), sent before the
// response is written (by finishMail).  The wire format lives in src/protocol/pond.ts, the
// socket in src/streams/datagram-socket.ts.
import { performance } from 'node:perf_hooks';
import type { RelayReport } from '../actions/action-result.js';
import { logDomain, logMails, logPlain } from '../log.js';
import { ConfigError } from '../errors.js';
import { pondSendErrors } from '../metrics.js';
import { systemErrorText } from '../native/linux.js';
import type { Action, MailState } from '../policy.js';
import { encodePondRecord, pondMessage, type PondRecord } from '../protocol/pond.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { ResponseText } from '../protocol/responses.js';
import { formatAddress, type SocketAddress } from '../protocol/socket-address.js';
import { ConnectedDatagramSocket } from '../streams/datagram-socket.js';
import type { CancelReason } from './client-gone.js';
import type { Client } from '../client.js';

export type MailResult =
  | { readonly kind: 'answered'; readonly response: ResponseText; readonly relayed: boolean; readonly relay?: RelayReport }
  /** `relayed`: a relaying action had started when the mail was cancelled. */
  | { readonly kind: 'canceled'; readonly reason: CancelReason; readonly relayed: boolean };

/** Everything known about a mail when it is over. */
export interface MailOutcome {
  readonly client: Client;
  readonly request: QmqpRequest;
  readonly mail: MailState;
  /** What the policy decided, if it got that far. */
  readonly decision: Action | 'script-failed' | undefined;
  readonly result: MailResult;
}

export interface MailLogger {
  log(outcome: MailOutcome): void;
}

/** The message suffix (docs/pond.md): the response minus its code letter, or why it was cancelled. */
function suffixOf(result: MailResult): string {
  return result.kind === 'answered' ? result.response.slice(1) : result.reason;
}

/** Wall-clock microseconds since the epoch (sub-millisecond, unlike Date.now()). */
function nowMicroseconds(): bigint {
  return BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
}

/** The record of one finished mail (docs/pond.md). */
export function mailRecord(outcome: MailOutcome, timestampUs: bigint, nowHr: bigint): PondRecord {
  const { request, mail, result } = outcome;
  let headerBytes = 0;
  for (const line of mail.headers) headerBytes += line.length;
  const received = request.body.length;
  return {
    timestampUs,
    site: mail.account,
    message: pondMessage(mail.sender, request.recipients, suffixOf(result)),
    length: BigInt(request.message.length + headerBytes),
    trafficReceived: BigInt(received),
    trafficSent: result.relayed ? BigInt(received + headerBytes) : 0n,
    durationUs: nowHr > outcome.client.acceptedAt ? (nowHr - outcome.client.acceptedAt) / 1000n : 0n,
  };
}

/**
 * The logger for `log_server` (docs/pond.md): one connected, non-blocking
 * datagram socket.  Throws a ConfigError (startup fails) when it cannot be created.
 */
export function createMailLogger(address: SocketAddress): MailLogger {
  let socket: ConnectedDatagramSocket;
  try {
    socket = ConnectedDatagramSocket.connect(address);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  const server = formatAddress(address);
  return {
    log(outcome) {
      const datagram = encodePondRecord(mailRecord(outcome, nowMicroseconds(), process.hrtime.bigint()));
      try {
        socket.send(datagram);
      } catch (e) {
        // a lost record never changes the mail's answer
        pondSendErrors.inc();
        const reason = systemErrorText(e);
        if (logMails) logDomain(outcome.client.domain, `sendmsg() to log_server ${server} failed: ${reason}`);
        else logPlain(`sendmsg() failed: ${reason}`);
      }
    },
  };
}
