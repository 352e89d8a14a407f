// A connected client as every stage of the pipeline sees it (made by
// src/operators/peer-credentials.ts from an accepted socket).
import type { PeerCredentials } from './native/linux.js';
import type { ClientConnection } from './streams/client-pipe.js';
import type { Listener } from './streams/listener.js';

export interface Client {
  /** The accepted connection (a bare libuv handle where Node allows it: src/streams/client-pipe.ts). */
  readonly socket: ClientConnection;
  readonly listener: Listener;
  readonly credentials: PeerCredentials | undefined;
  /** The short id of this connection's mail in log lines (docs/logging.md). */
  readonly mailId: string;
  /** The log domain of this connection: `pid=N uid=N mail=ID`, `connection mail=ID`, or without the id (QRELAY_LOG=quiet). */
  readonly domain: string;
  /** process.hrtime.bigint() at accept, for the Pond duration. */
  readonly acceptedAt: bigint;
}
