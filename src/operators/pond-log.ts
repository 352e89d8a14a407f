// Stage: one log record per processed mail (pond-log.md), sent before the
// response is written.  The wire format lives in src/protocol/pond.ts.
import { tap, type MonoTypeOperatorFunction } from 'rxjs';
import type { MailState } from '../policy.js';
import type { SocketAddress } from '../protocol/socket-address.js';
import { ConfigError } from '../lua/errors.js';
import type { QmqpRequest } from '../protocol/qmqp.js';
import type { ResponseText } from '../protocol/responses.js';
import type { CancelReason } from './client-gone.js';
import type { Client } from './peer-credentials.js';

export type MailResult =
  | { readonly kind: 'answered'; readonly response: ResponseText; readonly relayed: boolean }
  | { readonly kind: 'canceled'; readonly reason: CancelReason };

/** Everything known about a mail when it is over. */
export interface MailOutcome {
  readonly client: Client;
  readonly request: QmqpRequest;
  readonly mail: MailState;
  readonly result: MailResult;
}

export interface MailLogger {
  log(outcome: MailOutcome): void;
}

export function pondLog(logger: MailLogger | undefined): MonoTypeOperatorFunction<MailOutcome> {
  return logger === undefined ? (source) => source : tap((outcome) => logger.log(outcome));
}

/**
 * The logger for `log_server` (pond-log.md §1): one connected, non-blocking
 * datagram socket.  Throws a ConfigError (startup fails) when it cannot be created.
 */
export function createMailLogger(_address: SocketAddress): MailLogger {
  throw new ConfigError('log_server is not supported yet');
}
