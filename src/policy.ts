// The policy as the pipeline sees it: one mail in, one decision out.
// Implemented by the Lua engine (src/lua); used by src/operators.  Also what
// the config asks of the daemon at startup (ListenTarget, bound by src/streams).
import type { Observable } from './rx.js';
import type { PeerCredentials } from './native/linux.js';
import type { SocketAddress } from './protocol/socket-address.js';

export type Action =
  | { readonly kind: 'discard' }
  | { readonly kind: 'reject' }
  | {
      readonly kind: 'connect';
      /** Tried one after another until one takes the mail (at least one). */
      readonly servers: readonly SocketAddress[];
      /** `sequential`: in the listed order; `random`: from a random one on, round the list. */
      readonly order: 'sequential' | 'random';
      /** Per server: establishing the connection (undefined: the default). */
      readonly connectTimeoutMs: number | undefined;
      /** Per server: sending without progress, waiting for the answer, between its chunks (undefined: the defaults). */
      readonly timeoutMs: number | undefined;
    }
  | {
      readonly kind: 'exec' | 'exec_raw';
      /** argv[0] is the program path, used as given (no PATH search). */
      readonly argv: readonly string[];
      /** `NAME=VALUE` entries; undefined means an empty environment. */
      readonly env: readonly string[] | undefined;
      readonly timeoutMs: number | undefined;
    };

/** Whether carrying out `action` relays the mail (connect, exec, exec_raw): Pond traffic counts it. */
export function isRelayingAction(action: Action): boolean {
  return action.kind !== 'discard' && action.kind !== 'reject';
}

/** What the script made of the mail (read when the action starts and at the end). */
export interface MailState {
  readonly sender: string;
  readonly account: string | undefined;
  /** Inserted header lines, oldest first, each `name: value\r\n`. */
  readonly headers: readonly Buffer[];
}

export type Decision =
  | { readonly kind: 'action'; readonly action: Action; readonly mail: MailState }
  /** The handler failed; `log` is the line for stderr. */
  | { readonly kind: 'script-failed'; readonly log: string };

/** What the policy may know about the mail and its sender. */
export interface MailInput {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly credentials: PeerCredentials | undefined;
  /**
   * A pidfd pinning the client process for cgroup lookups (kernel ≥ 6.5),
   * fetched from the connection on first use and closed with the mail.
   */
  peerPidfd(): number | undefined;
}

/** One mail inside the policy, from the handler's start to the connection's end. */
export interface MailSession {
  /** Emits the decision once.  Unsubscribing abandons the handler. */
  readonly decision$: Observable<Decision>;
  /** The connection is over: the mail object goes stale.  Returns its final state. */
  close(): MailState;
}

export interface Policy {
  open(listener: number, mail: MailInput): MailSession;
}

/** Where `qmqp_listen` wants a listener; the daemon binds it synchronously. */
export type ListenTarget =
  | { readonly kind: 'path'; readonly path: string }
  | { readonly kind: 'abstract'; readonly name: Buffer }
  | { readonly kind: 'systemd' };
