// What carrying out an action produced: the answer for the client and the
// lines to log in the connection's domain.
import { systemErrorText } from '../native/linux.js';
import type { ResponseText } from '../protocol/responses.js';

export interface ActionResult {
  readonly response: ResponseText;
  readonly log?: readonly string[];
  /** `connect`: which server answered and how many were tried. */
  readonly relay?: RelayReport;
}

export interface RelayReport {
  /** The server whose answer the client got (the one that took the mail, on K). */
  readonly server: string;
  /** How many servers were tried for the mail (skipped ones not counted). */
  readonly tried: number;
}

/** A failure on the way, already mapped to the client's answer (docs/actions.md). */
export class ActionFailure extends Error {
  constructor(
    readonly response: ResponseText,
    log: string,
  ) {
    super(log);
  }
}

/** Turns any failure into the answer it stands for (unknown ones: `fallback`). */
export function failureResult(error: unknown, fallback: ResponseText, prefix: string): ActionResult {
  if (error instanceof ActionFailure) return { response: error.response, log: [error.message] };
  return { response: fallback, log: [`${prefix}${systemErrorText(error)}`] };
}
