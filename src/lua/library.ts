// What a Lua library is (src/lua/libs/NAME.lua + NAME.ts) and what it may
// use of the engine: the LibraryHost.  Libraries import this file, never the
// engine; the engine implements LibraryHost and installs the libraries
// (libraries.ts), so the imports run libraries → library.ts ← engine.
import type { Observable } from '../rx.js';
import type { MailInput } from '../policy.js';
import type { SocketAddress } from '../protocol/socket-address.js';
import type { LuaState, RawFunction } from './lua-state.js';
import type { BridgedFunction, LuaArg, LuaPushable } from './lua-values.js';

/** A suspended Lua call waits for this; its values are the call's results. */
export type Operation = (args: LuaArg[]) => Observable<LuaPushable[]>;

/** What the libraries use of the engine. */
export interface LibraryHost {
  /** `qrelay check`: side effects are recorded with `refuse`, not performed. */
  readonly dryRun: boolean;
  /** In a dry run: records that `what` was not performed. */
  refuse(what: string): void;
  /** The address of address object `id` (the first, for objects holding several). */
  addressById(id: number): SocketAddress | undefined;
  /** Registers a suspending operation that library code reaches through `M.suspend(name, …)`. */
  addOperation(name: string, operation: Operation): void;
  /** What the pipeline told the policy about mail `id` (while its connection lasts). */
  mailInput(id: number): MailInput | undefined;
  /** Runs a function registered with `M.add_task` as a new coroutine; emits once when it is over (errors as text). */
  runTask(task: number): Observable<string | undefined>;
}

export interface LibraryContext {
  readonly lua: LuaState;
  /** Registry reference of the runtime's entry table (M in the runtime chunks). */
  readonly runtime: number;
  readonly host: LibraryHost;
}

export interface LuaLibrary {
  /** The chunk's file name under src/lua/libs/, without `.lua`. */
  readonly name: string;
  /**
   * Further Lua chunks of the library (paths under src/lua/libs/, without
   * `.lua`), run in order before NAME.lua with the same primitives.
   */
  readonly parts?: readonly string[];
  readonly primitives: (context: LibraryContext) => Record<string, BridgedFunction>;
  readonly raw?: (context: LibraryContext) => Record<string, RawFunction>;
  /**
   * In a dry run (`qrelay check`): replacements for the primitives with side
   * effects, which record what they did not do with `host.refuse`.
   */
  readonly dryRun?: (context: LibraryContext, real: Readonly<Record<string, BridgedFunction>>) => Record<string, BridgedFunction>;
  /**
   * Asynchronous set-up that must finish before installation (e.g. loading
   * libsodium), given the config file's bytes (undefined when unreadable).
   */
  readonly prepare?: (config: Buffer | undefined) => Promise<void>;
  /** The daemon shuts down: close what the library holds open (e.g. database connections). */
  readonly shutdown?: () => void;
}
