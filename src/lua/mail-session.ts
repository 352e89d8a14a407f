// One mail inside the Lua policy, from the handler's start to the
// connection's end (the MailSession of src/policy.ts): the handler runs
// as a managed coroutine (driver.lua's M.dispatch), its final values
// become the Decision (outcome-layout.ts), and close() makes the mail
// object stale and reads the mail's last state.
import { map } from 'rxjs';
import type { MailInput, MailSession, MailState } from '../policy.js';
import type { CoroutineDriver } from './coroutine-driver.js';
import { readDecision, readMailState, type ServerLookup } from './outcome-layout.js';
import type { RuntimeEntries } from './runtime-chunks.js';

export interface MailSessionContext {
  readonly driver: CoroutineDriver;
  readonly entries: RuntimeEntries;
  readonly servers: ServerLookup;
  /** The inputs of the open mails by id, for the libraries (host.mailInput). */
  readonly mails: Map<number, MailInput>;
}

/** Starts the handler of `listener` for `mail` on first subscription to decision$. */
export function openMailSession(context: MailSessionContext, listener: number, mail: MailInput): MailSession {
  const { driver, entries, servers, mails } = context;
  const id = driver.newId();
  let closed: MailState | undefined;
  let started = false;
  mails.set(id, mail);
  const decision$ = driver
    .run$(id, () => {
      if (started) return ['error', 'the handler runs once per mail'];
      started = true;
      const c = mail.credentials;
      return driver.call(entries.dispatch, [listener, id, mail.sender, c?.pid, c?.uid, c?.gid, ...mail.recipients]);
    })
    .pipe(map((values) => readDecision(values, servers)));
  return {
    decision$,
    close: () => {
      if (closed === undefined) {
        mails.delete(id);
        const values = started ? driver.call(entries.close, [id]) : [];
        closed = values.length > 0 ? readMailState(values, 0).state : { sender: mail.sender, account: undefined, headers: [] };
      }
      return closed;
    },
  };
}
