// Writing the relayed request downstream (a `connect` socket or an `exec`
// child's stdin) with the send timeout of docs/limits.md
import type { Writable } from 'node:stream';
import { Observable, catchError, ignoreElements, throwError } from 'rxjs';
import { idleTimeout } from '../streams/idle-timeout.js';
import { systemErrorText } from '../native/linux.js';
import { Responses } from '../protocol/responses.js';
import { writePieces } from '../streams/write-pieces.js';
import { ActionFailure } from './action-result.js';

/** The `Zrelay failed` failure with its log line. */
export function relayFailed(log: string): ActionFailure {
  return new ActionFailure(Responses.relayFailed, log);
}

/**
 * Writes `request` (as pieces) to `stream`; emits nothing and completes when
 * all is written.  Errors with `Zrelay failed`: `Connect timeout` (sic) after
 * `stallMs` without write progress, `Failed to write: …` when a write fails.
 */
export function sendRequest(stream: Writable, request: readonly Buffer[], stallMs: number): Observable<never> {
  return writePieces(stream, request).pipe(
    idleTimeout({ each: stallMs, with: () => throwError(() => relayFailed('Connect timeout')) }),
    catchError((e: unknown) => throwError(() => (e instanceof ActionFailure ? e : relayFailed(`Failed to write: ${systemErrorText(e)}`)))),
    ignoreElements(),
  );
}
