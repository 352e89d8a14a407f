// Action `connect` with several servers: try them one after another until
// one takes the mail.  The next server is tried when a server could not be
// reached or was not sent the whole request, or when it answered Z; a K or
// D answer is final, and so is a failure after the whole request was sent
// (the server may have queued the mail: a duplicate is worse than a Z).
// Servers that failed are skipped for a while (src/actions/server-backoff.ts).
import { Observable, concatMap, defer, from, last, map, takeWhile, tap } from '../rx.js';
import { logMails } from '../log.js';
import type { Action } from '../policy.js';
import type { Timeouts } from '../timeouts.js';
import type { ActionResult, RelayReport } from './action-result.js';
import { relayToServer, relayWithReport, type RelayAttempt, type RelayTimeouts } from './connect.js';
import { serverName, type ServerBackoff } from './server-backoff.js';

export type ConnectAction = Extract<Action, { kind: 'connect' }>;

export interface RelayContext {
  readonly timeouts: Timeouts;
  readonly backoff: ServerBackoff;
}

/** The defaults with the action's `connect_timeout` and `timeout` options. */
function relayTimeouts(timeouts: Timeouts, action: ConnectAction): RelayTimeouts {
  const io = action.timeoutMs;
  return {
    connectMs: action.connectTimeoutMs ?? timeouts.connectMs,
    sendStallMs: io ?? timeouts.sendStallMs,
    firstResponseByteMs: io ?? timeouts.firstResponseByteMs,
    betweenResponseChunksMs: io ?? timeouts.betweenResponseChunksMs,
  };
}

/** Whether the next server may be tried after this attempt. */
function movesOn(attempt: RelayAttempt): boolean {
  return attempt.kind === 'not-sent' || (attempt.kind === 'answered' && attempt.result.response.startsWith('Z'));
}

function seconds(ms: number): string {
  return `${Math.round(ms / 100) / 10} s`;
}

/**
 * Relays `request` to the action's servers.  The result's `relay` names the
 * server whose answer the client gets and how many were tried; its log has
 * a line per server that did not take the mail.  With one server this is
 * exactly the original's `connect` (no backoff, the same log lines).
 */
export function relayToServers(action: ConnectAction, request: readonly Buffer[], context: RelayContext): Observable<ActionResult> {
  const timeouts = relayTimeouts(context.timeouts, action);
  if (action.servers.length === 1) {
    const address = action.servers[0]!;
    const relay: RelayReport = { server: serverName(address), tried: 1 };
    return relayWithReport(address, request, timeouts, relay);
  }
  const { backoff } = context;
  return defer(() => {
    const log: string[] = [];
    let tried = 0;
    return from(backoff.plan(action.servers, action.order)).pipe(
      concatMap((address) => {
        tried++;
        const startedAt = Date.now();
        const server = serverName(address);
        return relayToServer(address, request, timeouts).pipe(
          tap((attempt) => {
            if (attempt.kind === 'answered') {
              const failures = backoff.answered(server);
              if (failures !== undefined) log.push(`server=${server}: answering again after ${failures} failure${failures === 1 ? '' : 's'}`);
              if (movesOn(attempt)) log.push(`server=${server}: answered ${attempt.result.response}`);
              return;
            }
            const state = backoff.failed(server, startedAt);
            const skipped = state === undefined ? '' : ` (failures=${state.failures}, skipped for ${seconds(state.until - Date.now())})`;
            for (const line of attempt.result.log ?? []) log.push(`server=${server}: ${line}${skipped}`);
          }),
          map((attempt) => ({ server, attempt })),
        );
      }),
      takeWhile(({ attempt }) => movesOn(attempt), true),
      last(),
      map(({ server, attempt }): ActionResult => {
        // the line per mail names the server and the count (target=, tried=);
        // without it (QRELAY_LOG=quiet) this line says which server answered
        if (!logMails) log.push(`relay server=${server} tried=${tried} answer=${attempt.result.response[0] ?? ''}`);
        return { response: attempt.result.response, log, relay: { server, tried } };
      }),
    );
  });
}
