// Stage: an accepted socket → a client with the kernel's word on who it is.
import type { Socket } from 'node:net';
import { map, type OperatorFunction } from 'rxjs';
import { connectionDomain } from '../log.js';
import { peerCredentials, peerPidfd, type PeerCredentials } from '../native/linux.js';
import type { Accepted, Listener } from '../streams/listener.js';

export interface Client {
  readonly socket: Socket;
  readonly listener: Listener;
  readonly credentials: PeerCredentials | undefined;
  /** The log domain of this connection: `pid=N uid=N` or `connection`. */
  readonly domain: string;
  /** process.hrtime.bigint() at accept, for the Pond duration. */
  readonly acceptedAt: bigint;
}

function socketFd(socket: Socket): number | undefined {
  const handle = (socket as unknown as { _handle?: { fd?: number } })._handle;
  return handle?.fd !== undefined && handle.fd >= 0 ? handle.fd : undefined;
}

export function withPeerCredentials(): OperatorFunction<Accepted, Client> {
  return map(({ socket, listener }) => {
    const fd = socketFd(socket);
    const credentials = fd === undefined ? undefined : peerCredentials(fd);
    return { socket, listener, credentials, domain: connectionDomain(credentials), acceptedAt: process.hrtime.bigint() };
  });
}

/** A new pidfd for the client process (SO_PEERPIDFD), or undefined; the caller closes it. */
export function openClientPidfd(client: Client): number | undefined {
  const fd = socketFd(client.socket);
  return fd === undefined ? undefined : peerPidfd(fd);
}
