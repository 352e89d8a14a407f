// Action `exec_raw`: feed the bare message block to a local program and
// derive the answer from its exit status and output (docs/actions.md).
import type { Socket } from 'node:net';
import { Observable, catchError, defer, forkJoin, map, merge, of, reduce, switchMap, take, tap, throwError } from '../rx.js';
import { Responses } from '../protocol/responses.js';
import { childProcess, type ExitStatus } from '../streams/child-process.js';
import { socketChunks } from '../streams/socket-chunks.js';
import { writePieces } from '../streams/write-pieces.js';
import type { Timeouts } from '../timeouts.js';
import { systemErrorText } from '../native/linux.js';
import { ActionFailure, type ActionResult } from './action-result.js';
import { type ExecAction, execFailureResult, exitedSuccessfully, failedExitResult, withTimeoutOption } from './exec-outcome.js';

/** Output bytes kept for the answer; the rest is read and dropped. */
const KEPT_OUTPUT = 255;

/** Writes the block, then closes stdin so that the child sees EOF. */
function feedStdin(stdin: Socket, block: readonly Buffer[]): Observable<never> {
  return writePieces(stdin, block).pipe(
    tap({ complete: () => stdin.destroy() }),
    catchError((e: unknown) => throwError(() => new ActionFailure(Responses.writeError, `Failed to write: ${systemErrorText(e)}`))),
  );
}

/** The first 255 bytes of stdout+stderr, emitted at EOF. */
function keptOutput(output: Socket): Observable<Buffer> {
  return defer(() => {
    const kept = Buffer.alloc(KEPT_OUTPUT);
    return socketChunks(output).pipe(
      reduce((length, chunk) => (length >= KEPT_OUTPUT ? length : length + chunk.copy(kept, length)), 0),
      map((length) => kept.subarray(0, length)),
      catchError((e: unknown) => throwError(() => new ActionFailure(Responses.readError, `Failed to read: ${systemErrorText(e)}`))),
    );
  });
}

/** docs/actions.md: base text by exit status; with output, its code letter + the output. */
function rawAnswer(status: ExitStatus, output: Buffer): ActionResult {
  const base: ActionResult = exitedSuccessfully(status) ? { response: 'K' } : failedExitResult(status);
  if (output.length === 0) return base;
  return { ...base, response: base.response[0] + output.toString('latin1') };
}

/** Runs `action.argv` with the message block (as pieces) on stdin. */
export function runExecRaw(action: ExecAction, block: readonly Buffer[], timeouts: Pick<Timeouts, 'killGraceMs'>): Observable<ActionResult> {
  return childProcess({ argv: action.argv, env: action.env, domain: 'exec_raw', stderr: 'output', killGraceMs: timeouts.killGraceMs }).pipe(
    // Done only when the output reached EOF and the child exited.
    switchMap((child) => merge(feedStdin(child.stdin, block), forkJoin([child.exit$, keptOutput(child.output)]))),
    take(1),
    map(([status, output]) => rawAnswer(status, output)),
    catchError((e: unknown) => of(execFailureResult(e, Responses.internalErrorTemporary))),
    withTimeoutOption(action.timeoutMs),
  );
}
