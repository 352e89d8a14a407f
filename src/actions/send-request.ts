// Writing the relayed request downstream (a `connect` socket or an `exec`
// child's stdin) with the send timeout of docs/limits.md
import type { Writable } from 'node:stream';
import type { Observable } from '../rx.js';
import { systemErrorText } from '../native/linux.js';
import { Responses } from '../protocol/responses.js';
import { gatheredWrite$, type WriteOutcome } from '../streams/write-pieces.js';
import { ActionFailure } from './action-result.js';

/** The `Zrelay failed` failure with its log line. */
export function relayFailed(log: string): ActionFailure {
  return new ActionFailure(Responses.relayFailed, log);
}

/** Why a write that did not succeed failed: `Connect timeout` (sic) for a stall, `Failed to write: …` for an error. */
export function writeFailure(outcome: Exclude<WriteOutcome, undefined>): ActionFailure {
  return relayFailed(outcome === 'stalled' ? 'Connect timeout' : `Failed to write: ${systemErrorText(outcome)}`);
}

/**
 * Writes `request` (as pieces) to `stream`; emits nothing and completes when
 * all is written.  Errors with `Zrelay failed`: `Connect timeout` (sic) after
 * `stallMs` without write progress, `Failed to write: …` when a write fails.
 * Unsubscribing stops watching the write (the caller closes the stream).
 */
export function sendRequest(stream: Writable, request: readonly Buffer[], stallMs: number): Observable<never> {
  return gatheredWrite$(stream, request, stallMs, writeFailure);
}
