// Reads the values that cross from Lua to TypeScript when a handler is
// done: the mail's state and its action, flattened into a list of plain
// values.  runtime/outcome.lua writes the layout, which is (the same text
// stands there):
//
//   mail state   sender | false, account | false, N, header_1 … header_N
//                (sender false: the client's, not changed by the script)
//   action       kind, then by kind:
//     discard, reject    (nothing)
//     connect            order, connect_timeout | false, timeout | false, N,
//                        (server kind, server value) × N
//                        ('string', address text | 'object', address object id)
//     exec, exec_raw     timeout | false, N, argv_1 … argv_N,
//                        M | false, env_1 … env_M   (false: no env option)
//
// Timeouts are in seconds; false is "not given" (the engine's default).
// A handler's final status (runtime/driver.lua) is `'done', mail state,
// action`.  test/lua-outcome-layout.test.ts breaks when one side changes
// alone.
import { logMails } from '../log.js';
import type { Action, Decision, MailState } from '../policy.js';
import type { SocketAddress } from '../protocol/socket-address.js';
import type { LuaArg } from './lua-values.js';

/** Where `connect`'s servers come from: address strings and address objects (address-book.ts). */
export interface ServerLookup {
  numericAddress(text: string): SocketAddress;
  addresses(id: number): readonly SocketAddress[] | undefined;
}

/** The mail state starting at `values[at]` (`sender`: the client's), and the index after it. */
export function readMailState(values: readonly LuaArg[], at: number, sender: string): { state: MailState; next: number } {
  const changed = values[at];
  const account = values[at + 1];
  const count = Number(values[at + 2]);
  const headers: Buffer[] = [];
  for (let i = 0; i < count; i++) headers.push(Buffer.from(String(values[at + 3 + i]), 'latin1'));
  return {
    state: { sender: changed === false ? sender : String(changed), account: typeof account === 'string' ? account : undefined, headers },
    next: at + 3 + count,
  };
}

/** Seconds or false as milliseconds or undefined. */
function milliseconds(value: LuaArg): number | undefined {
  return typeof value === 'number' ? value * 1000 : undefined;
}

/** The action starting at `values[at]`.  Throws for an unknown kind or address object. */
export function readAction(values: readonly LuaArg[], at: number, servers: ServerLookup): Action {
  const kind = values[at];
  switch (kind) {
    case 'discard':
    case 'reject':
      return { kind };
    case 'connect':
      return readConnect(values, at + 1, servers);
    case 'exec':
    case 'exec_raw': {
      const timeout = values[at + 1];
      const argc = Number(values[at + 2]);
      const argv = values.slice(at + 3, at + 3 + argc).map(String);
      const envCount = values[at + 3 + argc];
      const env = envCount === false ? undefined : values.slice(at + 4 + argc, at + 4 + argc + Number(envCount)).map(String);
      return { kind, argv, env, timeoutMs: milliseconds(timeout) };
    }
    default:
      throw new Error(`Unknown action ${String(kind)}`);
  }
}

/** The fields after `'connect'`: order, timeouts, servers. */
function readConnect(values: readonly LuaArg[], at: number, lookup: ServerLookup): Action {
  const [order, connectTimeout, timeout, count] = values.slice(at, at + 4);
  const servers: SocketAddress[] = [];
  for (let i = 0, v = at + 4; i < Number(count); i++, v += 2) {
    if (values[v] === 'string') {
      servers.push(lookup.numericAddress(String(values[v + 1])));
      continue;
    }
    const listed = lookup.addresses(Number(values[v + 1]));
    if (listed === undefined) throw new Error('Unknown address object');
    servers.push(...listed);
  }
  return {
    kind: 'connect',
    servers,
    order: order === 'random' ? 'random' : 'sequential',
    connectTimeoutMs: milliseconds(connectTimeout),
    timeoutMs: milliseconds(timeout),
  };
}

/** A handler's final status values (runtime/driver.lua) as the pipeline's Decision (`sender`: the client's). */
export function readDecision(values: readonly LuaArg[], servers: ServerLookup, sender: string): Decision {
  switch (values[0]) {
    case 'error':
      return { kind: 'script-failed', log: String(values[1]) };
    case 'done':
      break;
    case 'badreturn':
      if (!logMails) return { kind: 'script-failed', log: 'Wrong return type from Lua handler' };
      return { kind: 'script-failed', log: `Wrong return type from Lua handler: expected an action (m:connect(…), m:exec(…), m:exec_raw(…), m:discard(), m:reject()), got ${String(values[1])}` };
    default:
      return { kind: 'script-failed', log: 'Wrong return type from Lua handler' };
  }
  const { state, next } = readMailState(values, 1, sender);
  try {
    return { kind: 'action', action: readAction(values, next, servers), mail: state };
  } catch (e) {
    return { kind: 'script-failed', log: (e as Error).message };
  }
}
