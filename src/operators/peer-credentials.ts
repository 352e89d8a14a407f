// Stage: an accepted socket → a client with the kernel's word on who it is.
import { map, type OperatorFunction } from '../rx.js';
import type { Client } from '../client.js';
import { connectionDomain, newMailId } from '../log.js';
import { peerCredentials, peerPidfd } from '../native/linux.js';
import type { Accepted } from '../streams/listener.js';

/**
 * Emits, for each accepted socket, the Client: the kernel's credentials of
 * the peer (SO_PEERCRED; undefined for a TCP or closed socket), a new mail
 * id, the log domain and the accept time, all read synchronously.
 * Completes and errors with the source; unsubscribing unsubscribes from it
 * (the sockets already emitted belong to whoever took them).
 */
export function withPeerCredentials(): OperatorFunction<Accepted, Client> {
  return map(({ socket, listener }) => {
    const fd = socket.fd;
    const credentials = fd === undefined ? undefined : peerCredentials(fd);
    const mailId = newMailId();
    return { socket, listener, credentials, mailId, domain: connectionDomain(credentials, mailId), acceptedAt: process.hrtime.bigint() };
  });
}

/** A new pidfd for the client process (SO_PEERPIDFD), or undefined; the caller closes it. */
export function openClientPidfd(client: Client): number | undefined {
  const fd = client.socket.fd;
  return fd === undefined ? undefined : peerPidfd(fd);
}
