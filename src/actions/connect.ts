// Action `connect`, one server: relay the request to a QMQP server and
// read its answer (docs/protocol.md).  What happened decides whether another
// server may be tried (src/actions/failover.ts).
import { connect as netConnect, Socket } from 'node:net';
import { Observable, catchError, concat, defer, finalize, map, of, tap, throwError } from 'rxjs';
import { idleTimeout } from '../streams/idle-timeout.js';
import { connectSocket, ENOTCONN, strerror, systemErrorText } from '../native/linux.js';
import { Responses } from '../protocol/responses.js';
import { ipHost, type SocketAddress } from '../protocol/socket-address.js';
import { socketChunks } from '../streams/socket-chunks.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult, failureResult } from './action-result.js';
import { readQmqpResponse } from './qmqp-response.js';
import { sendRequest } from './send-request.js';

/** How one attempt ended; `result` is what the client gets if it is the last. */
export type RelayAttempt =
  /** The server answered K, Z or D (`result.response` is its answer). */
  | { readonly kind: 'answered'; readonly result: ActionResult }
  /** Failed before the whole request was written: the server cannot have taken the mail. */
  | { readonly kind: 'not-sent'; readonly result: ActionResult }
  /** Failed after the request was written (no answer, or a malformed one): the server may have taken the mail. */
  | { readonly kind: 'sent'; readonly result: ActionResult };

export type RelayTimeouts = Pick<Timeouts, 'connectMs' | 'sendStallMs' | 'firstResponseByteMs' | 'betweenResponseChunksMs'>;

function openSocket(address: SocketAddress): Socket {
  if (address.family === 'unix' && address.abstract) {
    // Node pads abstract names; connect with the exact-length address instead.
    const { fd } = connectSocket(address, 'stream', false);
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  }
  if (address.family === 'unix') return netConnect({ path: address.name.toString('latin1'), allowHalfOpen: true });
  return netConnect({ host: ipHost(address), port: address.port, allowHalfOpen: true });
}

function connected(socket: Socket, connectMs: number): Observable<never> {
  return new Observable<never>((subscriber) => {
    if (!socket.connecting) {
      subscriber.complete();
      return;
    }
    const onConnect = (): void => subscriber.complete();
    const onError = (e: NodeJS.ErrnoException): void =>
      subscriber.error(
        // a Unix socket whose listen backlog is full: the original takes EAGAIN
        // for "in progress", and its first write fails (docs/actions.md, connect)
        e.code === 'EAGAIN'
          ? new ActionFailure(Responses.relayFailed, `Failed to write: ${strerror(ENOTCONN)}`)
          : new ActionFailure(Responses.connectFailed, `Failed to connect: ${systemErrorText(e)}`),
      );
    socket.once('connect', onConnect);
    socket.once('error', onError);
    return () => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
    };
  }).pipe(idleTimeout({ first: connectMs, with: () => throwError(() => new ActionFailure(Responses.connectFailed, 'Connect timeout')) }));
}

/** Relays `request` (the re-assembled request, as pieces) to `address`; emits how it went, once. */
export function relayToServer(address: SocketAddress, request: readonly Buffer[], timeouts: RelayTimeouts): Observable<RelayAttempt> {
  return defer(() => {
    let socket: Socket;
    try {
      socket = openSocket(address);
    } catch (e) {
      return of<RelayAttempt>({ kind: 'not-sent', result: { response: Responses.connectFailed, log: [(e as Error).message] } });
    }
    socket.on('error', () => {
      // reported through the phase that is running
    });
    let sent = false;
    return concat(
      connected(socket, timeouts.connectMs),
      sendRequest(socket, request, timeouts.sendStallMs).pipe(tap({ complete: () => (sent = true) })),
      readQmqpResponse(socketChunks(socket), timeouts),
    ).pipe(
      map((result): RelayAttempt => ({ kind: result.response === Responses.malformedRelayResponse ? 'sent' : 'answered', result })),
      catchError((e: unknown) => of<RelayAttempt>({ kind: sent ? 'sent' : 'not-sent', result: failureResult(e, Responses.relayFailed, '') })),
      finalize(() => socket.destroy()),
    );
  });
}
