// One mail inside the Lua policy, from the handler's start to the
// connection's end (the MailSession of src/policy.ts): the handler runs
// as a managed coroutine (driver.lua's M.dispatch), its final values
// become the Decision (outcome-layout.ts), and close() makes the mail
// object stale and gives the mail's last state: the one the action
// carried unless the script changed it since (then read from Lua).
import type { Observable } from '../rx.js';
import type { Decision, MailInput, MailSession, MailState } from '../policy.js';
import type { Coroutine, CoroutineDriver } from './coroutine-driver.js';
import { LuaError, type BridgedFunction, type LuaArg } from './lua-values.js';
import { readDecision, readMailState, type ServerLookup } from './outcome-layout.js';
import type { RuntimeEntries } from './runtime-chunks.js';

/**
 * The inputs of the open mails by id (openMailSession to close).  It always
 * holds a placeholder, id 0, which no coroutine gets (CoroutineDriver's ids
 * start at 1): V8 shrinks a Map on a delete that leaves it under a quarter
 * full, so a Map going 0 -> 1 -> 0 entries mail after mail (one client at a
 * time) got a new hash table at every close (Runtime_MapShrink: 5.8 % of
 * the samples of an in-process loop of policy calls).
 */
export type OpenMails = Map<number, MailInput | undefined>;

export function openMails(): OpenMails {
  return new Map([[0, undefined]]);
}

export interface MailSessionContext {
  readonly driver: CoroutineDriver;
  readonly entries: RuntimeEntries;
  readonly servers: ServerLookup;
  /** The inputs of the open mails by id, for the libraries (host.mailInput) and mail.lua. */
  readonly mails: OpenMails;
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
export function mailPrimitives(mails: OpenMails, changed: Set<number>): Record<string, BridgedFunction> {
  return {
    mail_input: ([id]) => {
      const mail = mails.get(Number(id));
      if (mail === undefined) throw new LuaError('Stale object');
      const c = mail.credentials;
      return [mail.sender, c?.pid, c?.uid, c?.gid, ...mail.recipients];
    },
    mail_changed: ([id]) => {
      if (mails.get(Number(id)) !== undefined) changed.add(Number(id));
    },
  };
}

/** Starts the handler of `listener` for `mail` on first subscription to decision$. */
export function openMailSession(context: MailSessionContext, listener: number, mail: MailInput): MailSession {
  return new LuaMailSession(context, listener, mail);
}

/**
 * One mail's session; also the Coroutine its handler runs as.  A class, not
 * closures made per mail (see src/operators/serve-client.ts, Connection).
 */
class LuaMailSession implements MailSession, Coroutine<Decision> {
  readonly decision$: Observable<Decision>;
  private readonly id: number;
  private closed: MailState | undefined = undefined;
  /** The mail state the handler's action carried (close() reuses it unless the script changed it since). */
  private reported: MailState | undefined = undefined;
  private started = false;

  constructor(
    private readonly context: MailSessionContext,
    private readonly listener: number,
    private readonly mail: MailInput,
  ) {
    this.id = context.driver.newId();
    context.mails.set(this.id, mail);
    this.decision$ = context.driver.run$(this.id, this);
  }

  start(): LuaArg[] {
    if (this.started) return ['error', 'the handler runs once per mail'];
    this.started = true;
    return this.context.driver.callEnding(this.context.entries.dispatch, [this.listener, this.id]);
  }

  project(values: LuaArg[]): Decision {
    const decision = readDecision(values, this.context.servers, this.mail.sender);
    if (decision.kind === 'action') this.reported = decision.mail;
    return decision;
  }

  close(): MailState {
    if (this.closed === undefined) {
      const { context, id, mail } = this;
      context.mails.delete(id);
      const changedSince = context.changed.delete(id);
      if (!this.started) {
        this.closed = { sender: mail.sender, account: undefined, headers: [] };
      } else if (this.reported !== undefined && !changedSince) {
        context.driver.endLater(id);
        this.closed = this.reported;
      } else {
        const values = context.driver.call(context.entries.close, [id], false);
        const client: MailState = { sender: mail.sender, account: undefined, headers: [] };
        // none: Lua holds no state of this mail; a mail state is at least
        // three values, a failed call ('error', text: the engine was
        // abandoned) two, and then the state the action carried, if any
        if (values.length === 0) this.closed = client;
        else this.closed = values.length >= 3 ? readMailState(values, 0, mail.sender).state : (this.reported ?? client);
      }
    }
    return this.closed;
  }
}
