// One mail inside the Lua policy, from the handler's start to the
// connection's end (the MailSession of src/policy.ts): the handler runs
// as a managed coroutine (driver.lua's M.dispatch), its final values
// become the Decision (outcome-layout.ts), and close() makes the mail
// object stale and reads the mail's last state.
import type { MailInput, MailSession, MailState } from '../policy.js';
import type { CoroutineDriver } from './coroutine-driver.js';
import { LuaError, type BridgedFunction } from './lua-values.js';
import { readDecision, readMailState, type ServerLookup } from './outcome-layout.js';
import type { RuntimeEntries } from './runtime-chunks.js';

export interface MailSessionContext {
  readonly driver: CoroutineDriver;
  readonly entries: RuntimeEntries;
  readonly servers: ServerLookup;
  /** The inputs of the open mails by id, for the libraries (host.mailInput) and mail.lua. */
  readonly mails: Map<number, MailInput>;
}

/**
 * The `mail_input` primitive (runtime/mail.lua): what the client sent,
 * fetched on the script's first read: sender, pid, uid, gid (nil without
 * credentials), then the recipients.
 */
export function mailInputPrimitive(mails: ReadonlyMap<number, MailInput>): BridgedFunction {
  return ([id]) => {
    const mail = mails.get(Number(id));
    if (mail === undefined) throw new LuaError('Stale object');
    const c = mail.credentials;
    return [mail.sender, c?.pid, c?.uid, c?.gid, ...mail.recipients];
  };
}

/** Starts the handler of `listener` for `mail` on first subscription to decision$. */
export function openMailSession(context: MailSessionContext, listener: number, mail: MailInput): MailSession {
  const { driver, entries, servers, mails } = context;
  const id = driver.newId();
  let closed: MailState | undefined;
  /** The mail state the handler's action carried (close() reuses it when the script changed nothing since). */
  let reported: MailState | undefined;
  let started = false;
  mails.set(id, mail);
  const decision$ = driver.run$(
    id,
    () => {
      if (started) return ['error', 'the handler runs once per mail'];
      started = true;
      return driver.call(entries.dispatch, [listener, id]);
    },
    (values) => {
      const decision = readDecision(values, servers, mail.sender);
      if (decision.kind === 'action') reported = decision.mail;
      return decision;
    },
  );
  return {
    decision$,
    close: () => {
      if (closed === undefined) {
        const values = started ? driver.call(entries.close, [id, reported !== undefined]) : [];
        mails.delete(id);
        if (values.length === 0) closed = { sender: mail.sender, account: undefined, headers: [] };
        else closed = values[0] === true && reported !== undefined ? reported : readMailState(values, 0, mail.sender).state;
      }
      return closed;
    },
  };
}
