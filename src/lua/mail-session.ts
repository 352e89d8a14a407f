// One mail inside the Lua policy, from the handler's start to the
// connection's end (the MailSession of src/policy.ts): the handler runs
// as a managed coroutine (driver.lua's M.dispatch), its final values
// become the Decision (outcome-layout.ts), and close() makes the mail
// object stale and gives the mail's last state: the one the action
// carried unless the script changed it since (then read from Lua).
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
  /**
   * Open mails whose close must run in Lua at once: their state changed
   * after their action carried it (mail.lua's `changed`), or a library
   * holds something of theirs (host.mailInput: m.cgroup's descriptors).
   */
  readonly changed: Set<number>;
}

/**
 * The primitives of runtime/mail.lua.  `mail_input`: what the client
 * sent, fetched on the script's first read: sender, pid, uid, gid (nil
 * without credentials), then the recipients.  `mail_changed`: the state
 * of an open mail changed after its action carried it.
 */
export function mailPrimitives(mails: ReadonlyMap<number, MailInput>, changed: Set<number>): Record<string, BridgedFunction> {
  return {
    mail_input: ([id]) => {
      const mail = mails.get(Number(id));
      if (mail === undefined) throw new LuaError('Stale object');
      const c = mail.credentials;
      return [mail.sender, c?.pid, c?.uid, c?.gid, ...mail.recipients];
    },
    mail_changed: ([id]) => {
      if (mails.has(Number(id))) changed.add(Number(id));
    },
  };
}

/** Starts the handler of `listener` for `mail` on first subscription to decision$. */
export function openMailSession(context: MailSessionContext, listener: number, mail: MailInput): MailSession {
  const { driver, entries, servers, mails, changed } = context;
  const id = driver.newId();
  let closed: MailState | undefined;
  /** The mail state the handler's action carried (close() reuses it unless the script changed it since). */
  let reported: MailState | undefined;
  let started = false;
  mails.set(id, mail);
  const decision$ = driver.run$(
    id,
    () => {
      if (started) return ['error', 'the handler runs once per mail'];
      started = true;
      return driver.callEnding(entries.dispatch, [listener, id]);
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
        mails.delete(id);
        const changedSince = changed.delete(id);
        if (!started) {
          closed = { sender: mail.sender, account: undefined, headers: [] };
        } else if (reported !== undefined && !changedSince) {
          driver.endLater(id);
          closed = reported;
        } else {
          const values = driver.call(entries.close, [id]);
          closed = values.length > 0 ? readMailState(values, 0, mail.sender).state : { sender: mail.sender, account: undefined, headers: [] };
        }
      }
      return closed;
    },
  };
}
