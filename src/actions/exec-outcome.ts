// How a child's run becomes the client's answer, for both `exec` and
// `exec_raw`: the exit-status mapping, a failed start and the `timeout`
// option (docs/actions.md).
import { logMails } from '../log.js';
import { of, timeout, type MonoTypeOperatorFunction } from '../rx.js';
import type { Action } from '../policy.js';
import { Responses } from '../protocol/responses.js';
import { ChildStartFailure, type ExitStatus } from '../streams/child-process.js';
import { systemErrorText } from '../native/linux.js';
import { type ActionResult, failureResult } from './action-result.js';

/** What the Lua engine made of `m:exec(...)` / `m:exec_raw(...)`. */
export type ExecAction = Extract<Action, { kind: 'exec' | 'exec_raw' }>;

/** sysexits.h codes the original answers with a permanent failure. */
const PERMANENT_EXIT_CODES = new Set([64, 72, 77, 78]);

export function exitedSuccessfully(status: ExitStatus): boolean {
  return status.kind === 'exited' && status.code === 0;
}

/**
 * The answer for any other exit.  A signal number goes through the same
 * mapping and is logged as `Exit status S`, as the original does.
 */
export function failedExitResult(status: ExitStatus): ActionResult {
  const number = status.kind === 'exited' ? status.code : status.signal;
  const response = PERMANENT_EXIT_CODES.has(number) ? Responses.internalErrorPermanent : Responses.internalErrorTemporary;
  return { response, log: [`Exit status ${number}`] };
}

/** Any failure of an exec action mapped to its answer; unknown ones give `fallback`. */
export function execFailureResult(error: unknown, fallback: ActionResult['response']): ActionResult {
  if (error instanceof ChildStartFailure) {
    // the program's name unless QRELAY_LOG=quiet (the original's text)
    const program = logMails ? `${error.program === '' ? '""' : error.program}: ` : '';
    return { response: Responses.internalErrorTemporary, log: [`Failed to execute process: ${program}${systemErrorText(error.reason)}`] };
  }
  return failureResult(error, fallback, '');
}

/** The `timeout` option: `Ztimeout` when no answer came in time; the child is terminated by teardown. */
export function withTimeoutOption(timeoutMs: number | undefined): MonoTypeOperatorFunction<ActionResult> {
  if (timeoutMs === undefined) return (result$) => result$;
  return timeout({ first: timeoutMs, with: () => of<ActionResult>({ response: Responses.timeout, log: ['timeout'] }) });
}
