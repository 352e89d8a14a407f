// Actions `exec` and `exec_raw` (exec.md): not yet available.
import { of, type Observable } from 'rxjs';
import type { Action } from '../policy.js';
import { Responses } from '../protocol/responses.js';
import type { ActionResult } from './action-result.js';

type ExecAction = Extract<Action, { kind: 'exec' | 'exec_raw' }>;

export function runExec(_action: ExecAction, _request: readonly Buffer[]): Observable<ActionResult> {
  return of({ response: Responses.internalErrorTemporary, log: ['exec is not implemented'] });
}

export function runExecRaw(_action: ExecAction, _block: readonly Buffer[]): Observable<ActionResult> {
  return of({ response: Responses.internalErrorTemporary, log: ['exec_raw is not implemented'] });
}
