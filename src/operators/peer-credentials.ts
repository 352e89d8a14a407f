// Stage: an accepted socket → a client with the kernel's word on who it is.
import type { Socket } from 'node:net';
import { map, type OperatorFunction } from 'rxjs';
import { connectionDomain, newMailId } from '../log.js';
import { peerCredentials, peerPidfd, type PeerCredentials } from '../native/linux.js';
import type { Accepted, Listener } from '../streams/listener.js';

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

function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  return handle?.fd !== undefined && handle.fd >= 0 ? handle.fd : undefined;
}

/**
 * Emits, for each accepted socket, the Client: the kernel's credentials of
 * the peer (SO_PEERCRED; undefined for a TCP or closed socket), a new mail
 * id, the log domain and the accept time, all read synchronously.
 * Completes and errors with the source; unsubscribing unsubscribes from it
 * (the sockets already emitted belong to whoever took them).
 */
export function withPeerCredentials(): OperatorFunction<Accepted, Client> {
  return map(({ socket, listener }) => {
    const fd = socketFd(socket);
    const credentials = fd === undefined ? undefined : peerCredentials(fd);
    const mailId = newMailId();
    return { socket, listener, credentials, mailId, domain: connectionDomain(credentials, mailId), acceptedAt: process.hrtime.bigint() };
  });
}

/** A new pidfd for the client process (SO_PEERPIDFD), or undefined; the caller closes it. */
export function openClientPidfd(client: Client): number | undefined {
  const fd = socketFd(client.socket);
  return fd === undefined ? undefined : peerPidfd(fd);
}
