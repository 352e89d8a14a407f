// A connected client as every stage of the pipeline sees it (made by
// src/operators/peer-credentials.ts from an accepted socket).
import type { Socket } from 'node:net';
import type { PeerCredentials } from './native/linux.js';
import type { Listener } from './streams/listener.js';

export interface Client {
  readonly socket: Socket;
  readonly listener: Listener;
  readonly credentials: PeerCredentials | undefined;
  /** The short id of this connection's mail in log lines (docs/logging.md). */
  readonly mailId: string;
  /** The log domain of this connection: `pid=N uid=N mail=ID`, `connection mail=ID`, or without the id (QRELAY_LOG=quiet). */
  readonly domain: string;
  /** process.hrtime.bigint() at accept, for the Pond duration. */
  readonly acceptedAt: bigint;
}
