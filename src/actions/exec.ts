// Action `exec`: speak QMQP with a local program over its stdin/stdout
// (docs/actions.md).  The request goes to stdin, which is then closed, so that
// programs reading to EOF work (the original keeps it open until the
// transaction is over: docs/differences.md); the answer netstring read from
// stdout is forwarded only once the child has exited with status 0.
import type { Socket } from 'node:net';
import { EMPTY, Observable, catchError, concat, defer, filter, map, merge, mergeMap, of, switchMap, take, throwError, timeout } from '../rx.js';
import { Responses } from '../protocol/responses.js';
import { childProcess } from '../streams/child-process.js';
import { socketChunks } from '../streams/socket-chunks.js';
import type { Timeouts } from '../timeouts.js';
import { ActionFailure, type ActionResult } from './action-result.js';
import { type ExecAction, execFailureResult, exitedSuccessfully, failedExitResult, withTimeoutOption } from './exec-outcome.js';
import { readQmqpResponse } from './qmqp-response.js';
import { sendRequest } from './send-request.js';

export { runExecRaw } from './exec-raw.js';
/** For the daemon's shutdown: SIGTERM and at once SIGKILL to every running child. */
export { terminateAllChildren } from '../streams/child-process.js';

/**
 * EOF on stdout before the answer was complete (same log text as for a
 * socket).  Usually the child has just exited, and its exit status decides:
 * a non-zero status is mapped as usual, 0 gives `Zrelay failed` at once
 * (our fix of the original, which waits for its timers; docs/differences.md).
 */
class StdoutClosed extends ActionFailure {
  constructor() {
    super(Responses.relayFailed, 'Peer closed the socket prematurely');
  }
}

function answerChunks(output: Socket): Observable<Buffer> {
  return concat(socketChunks(output), throwError(() => new StdoutClosed()));
}

/** Runs `action.argv` with the re-assembled QMQP request (as pieces) on stdin. */
export function runExec(action: ExecAction, request: readonly Buffer[], timeouts: Timeouts): Observable<ActionResult> {
  return childProcess({ argv: action.argv, env: action.env, domain: 'exec', stderr: 'daemon', killGraceMs: timeouts.killGraceMs }).pipe(
    switchMap((child) => {
      // A complete answer waits for the exit status; a failed write or read
      // (EOF included: an exit 0 without an answer) answers at once.
      const sent$ = concat(sendRequest(child.stdin, request, timeouts.sendStallMs), defer(() => (child.stdin.end(), EMPTY)));
      const answered$ = concat(sent$, readQmqpResponse(answerChunks(child.output), timeouts)).pipe(
        mergeMap((answer) => child.exit$.pipe(map((status) => (exitedSuccessfully(status) ? answer : failedExitResult(status))))),
        catchError((e: unknown) =>
          e instanceof StdoutClosed
            ? child.exit$.pipe(
                filter(exitedSuccessfully),
                timeout({ first: timeouts.exitAfterEofMs, with: () => throwError(() => e) }),
                mergeMap(() => throwError(() => e)),
              )
            : throwError(() => e),
        ),
      );
      // A non-zero exit decides at once, whatever was read.
      const failedExit$ = child.exit$.pipe(
        filter((status) => !exitedSuccessfully(status)),
        map(failedExitResult),
      );
      return merge(answered$, failedExit$);
    }),
    take(1),
    catchError((e: unknown) => of(execFailureResult(e, Responses.relayFailed))),
    withTimeoutOption(action.timeoutMs),
  );
}
