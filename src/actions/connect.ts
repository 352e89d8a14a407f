// Action `connect`, one server: relay the request to a QMQP server and
// read its answer (docs/protocol.md).  What happened decides whether another
// server may be tried (src/actions/failover.ts).
import { connect as netConnect, Socket } from 'node:net';
import { Observable } from '../rx.js';
import { connectSocket, ENOTCONN, strerror, systemErrorText } from '../native/linux.js';
import { NetstringReader } from '../protocol/netstring-reader.js';
import { Responses } from '../protocol/responses.js';
import { ipHost, type SocketAddress } from '../protocol/socket-address.js';
import { unixStreamOptions } from '../streams/pipe-handle.js';
import { writeGathered } from '../streams/write-pieces.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult } from './action-result.js';
import { MAX_RESPONSE, PREMATURE_CLOSE, qmqpAnswer, wholeAnswer } from './qmqp-response.js';
import { relayFailed, writeFailure } from './send-request.js';

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
  if (address.family === 'unix') {
    // connected by the native module: Node pads abstract names, and a path
    // connected here needs no 'connect' callback a loop turn later
    const { fd } = connectSocket(address, 'stream', false);
    return new Socket(unixStreamOptions(fd));
  }
  return netConnect({ host: ipHost(address), port: address.port, allowHalfOpen: true });
}

/** A failed connect: a Unix socket whose listen backlog is full is EAGAIN, which the original takes for "in progress", and its first write fails (docs/actions.md, connect). */
function connectFailure(e: NodeJS.ErrnoException): ActionFailure {
  return e.code === 'EAGAIN'
    ? relayFailed(`Failed to write: ${strerror(ENOTCONN)}`)
    : new ActionFailure(Responses.connectFailed, `Failed to connect: ${systemErrorText(e)}`);
}

const enum Phase {
  Connect,
  Send,
  Answer,
  Done,
}

/**
 * Relays `request` (the re-assembled request, as pieces) to `address` and
 * reads the answer.  Emits how it went (one RelayAttempt), then completes;
 * never errors.  One subscription does the whole attempt in three phases,
 * with one timer for the phase under way:
 * - connect: `connectMs` (`Zconnect failed`, log `Connect timeout`);
 * - send, one gathered write: `sendStallMs` without progress (`Zrelay
 *   failed`, log `Connect timeout`, sic), `Failed to write: …`;
 * - answer, one netstring of at most 256 bytes (an answer that comes in
 *   one chunk is decoded at once, others by the NetstringReader): `firstResponseByteMs` for
 *   the first chunk, `betweenResponseChunksMs` after each (`Connect
 *   timeout`), `Failed to receive: …`, `Peer closed the socket
 *   prematurely`, the netstring reader's errors.
 * The socket is closed once the attempt is over.  Unsubscribing closes it
 * too and clears the timer: nothing is emitted after that.
 *
 * The same as concat(connect, sendRequest, readQmqpResponse(socketChunks))
 * with their timeouts, but one subscription, one set of socket listeners
 * and one timer a phase where that chain took about 17 subscriptions.
 */
export function relayToServer(address: SocketAddress, request: readonly Buffer[], timeouts: RelayTimeouts): Observable<RelayAttempt> {
  return new Observable<RelayAttempt>((subscriber) => {
    let socket: Socket;
    try {
      socket = openSocket(address);
    } catch (e) {
      subscriber.next({ kind: 'not-sent', result: { response: Responses.connectFailed, log: [(e as Error).message] } });
      subscriber.complete();
      return;
    }
    let phase = Phase.Connect;
    let timer: NodeJS.Timeout | undefined;
    let stopWriting: (() => void) | undefined;
    let reader: NetstringReader | undefined;

    const end = (attempt: RelayAttempt): void => {
      phase = Phase.Done;
      subscriber.next(attempt);
      subscriber.complete();
    };
    const fail = (e: ActionFailure): void =>
      end({ kind: phase === Phase.Answer ? 'sent' : 'not-sent', result: { response: e.response, log: [e.message] } });
    const arm = (ms: number, onTimeout: () => void): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(onTimeout, ms);
    };
    const disarm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
    };

    const send = (): void => {
      disarm();
      phase = Phase.Send;
      stopWriting = writeGathered(socket, request, timeouts.sendStallMs, (outcome) => {
        if (outcome === undefined) awaitAnswer();
        else fail(writeFailure(outcome));
      });
    };

    const awaitAnswer = (): void => {
      phase = Phase.Answer;
      socket.on('data', onData);
      socket.on('end', onEnd);
      socket.on('close', onEnd);
      if (socket.readableEnded || socket.destroyed) onEnd();
      else arm(timeouts.firstResponseByteMs, onAnswerTimeout);
    };
    const onData = (chunk: Buffer): void => {
      if (phase !== Phase.Answer) return;
      if (reader === undefined) {
        const whole = wholeAnswer(chunk);
        if (whole !== undefined) {
          answered(whole);
          return;
        }
        reader = new NetstringReader(MAX_RESPONSE);
      }
      const result = reader.push(chunk);
      if (result === undefined) {
        arm(timeouts.betweenResponseChunksMs, onAnswerTimeout);
        return;
      }
      const answer = qmqpAnswer(result);
      if (answer instanceof ActionFailure) fail(answer);
      else answered(answer);
    };
    const answered = (answer: ActionResult): void =>
      end({ kind: answer.response === Responses.malformedRelayResponse ? 'sent' : 'answered', result: answer });
    const onEnd = (): void => {
      if (phase === Phase.Answer) fail(relayFailed(PREMATURE_CLOSE));
    };
    const onAnswerTimeout = (): void => {
      if (phase === Phase.Answer) fail(relayFailed('Connect timeout'));
    };

    socket.on('error', (e: NodeJS.ErrnoException) => {
      // while sending, a failure is reported through the write's callback
      if (phase === Phase.Connect) fail(connectFailure(e));
      else if (phase === Phase.Answer) fail(relayFailed(`Failed to receive: ${systemErrorText(e)}`));
    });
    if (socket.connecting) {
      socket.once('connect', () => {
        if (phase === Phase.Connect) send();
      });
      // a Unix socket is connected (or refused) by the connect call itself,
      // only its callback waits for the next loop turn: no timer needed
      if (address.family !== 'unix') {
        arm(timeouts.connectMs, () => {
          if (phase === Phase.Connect) fail(new ActionFailure(Responses.connectFailed, 'Connect timeout'));
        });
      }
    } else {
      send();
    }

    return () => {
      phase = Phase.Done;
      disarm();
      stopWriting?.();
      socket.destroy();
    };
  });
}
