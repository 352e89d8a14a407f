// Action `connect`: relay the request to another QMQP server and pass its
// answer through (qmqp.md §7–§10).
import { connect as netConnect, Socket } from 'node:net';
import { Observable, catchError, concat, defer, finalize, ignoreElements, of, throwError, timeout } from 'rxjs';
import { connectSocket } from '../native/linux.js';
import { Responses } from '../protocol/responses.js';
import { ipHost, type SocketAddress } from '../protocol/socket-address.js';
import { socketChunks } from '../streams/socket-chunks.js';
import { writePieces } from '../streams/write-pieces.js';
import { ActionFailure, type ActionResult, failureResult, systemErrorText } from './action-result.js';
import { readQmqpResponse } from './qmqp-response.js';

const CONNECT_TIMEOUT_MS = 20_000;
const SEND_STALL_TIMEOUT_MS = 10_000;

function openSocket(address: SocketAddress): Socket {
  if (address.family === 'unix' && address.abstract) {
    // Node pads abstract names; connect with the exact-length address instead.
    const { fd } = connectSocket(address, 'stream', false);
    return new Socket({ fd, readable: true, writable: true, allowHalfOpen: true });
  }
  if (address.family === 'unix') return netConnect({ path: address.name.toString('latin1'), allowHalfOpen: true });
  return netConnect({ host: ipHost(address), port: address.port, allowHalfOpen: true });
}

function connected(socket: Socket): Observable<never> {
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
  }).pipe(timeout({ first: CONNECT_TIMEOUT_MS, with: () => throwError(() => new ActionFailure(Responses.connectFailed, 'Connect timeout')) }));
}

/** Relays `request` (the re-assembled request, as pieces) to `address`. */
export function relayToServer(address: SocketAddress, request: readonly Buffer[]): Observable<ActionResult> {
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
    const sent$ = writePieces(socket, request).pipe(
      timeout({ each: SEND_STALL_TIMEOUT_MS, with: () => throwError(() => new ActionFailure(Responses.relayFailed, 'Connect timeout')) }),
      catchError((e: unknown) => throwError(() => (e instanceof ActionFailure ? e : new ActionFailure(Responses.relayFailed, `Failed to write: ${systemErrorText(e)}`)))),
      ignoreElements(),
    );
    return concat(connected(socket), sent$, readQmqpResponse(socketChunks(socket))).pipe(
      catchError((e: unknown) => of(failureResult(e, Responses.relayFailed, ''))),
      finalize(() => socket.destroy()),
    );
  });
}
