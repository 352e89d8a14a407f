// Action `connect`: relay the request to another QMQP server and pass its
// answer through (qmqp.md §7–§10).
import { connect as netConnect, Socket } from 'node:net';
import { Observable, catchError, concat, defer, finalize, of, throwError } from 'rxjs';
import { idleTimeout } from '../operators/idle-timeout.js';
import { connectSocket, systemErrorText } from '../native/linux.js';
import { Responses } from '../protocol/responses.js';
import { ipHost, type SocketAddress } from '../protocol/socket-address.js';
import { socketChunks } from '../streams/socket-chunks.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult, failureResult } from './action-result.js';
import { readQmqpResponse } from './qmqp-response.js';
import { sendRequest } from './send-request.js';

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
    const onError = (e: Error): void => subscriber.error(new ActionFailure(Responses.connectFailed, `Failed to connect: ${systemErrorText(e)}`));
    socket.once('connect', onConnect);
    socket.once('error', onError);
    return () => {
      socket.off('connect', onConnect);
      socket.off('error', onError);
    };
  }).pipe(idleTimeout({ first: connectMs, with: () => throwError(() => new ActionFailure(Responses.connectFailed, 'Connect timeout')) }));
}

/** Relays `request` (the re-assembled request, as pieces) to `address`. */
export function relayToServer(address: SocketAddress, request: readonly Buffer[], timeouts: Timeouts): Observable<ActionResult> {
  return defer(() => {
    let socket: Socket;
    try {
      socket = openSocket(address);
    } catch (e) {
      return of<ActionResult>({ response: Responses.connectFailed, log: [(e as Error).message] });
    }
    socket.on('error', () => {
      // reported through the phase that is running
    });
    return concat(
      connected(socket, timeouts.connectMs),
      sendRequest(socket, request, timeouts.sendStallMs),
      readQmqpResponse(socketChunks(socket), timeouts),
    ).pipe(
      catchError((e: unknown) => of(failureResult(e, Responses.relayFailed, ''))),
      finalize(() => socket.destroy()),
    );
  });
}
