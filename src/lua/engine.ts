// The Lua engine: one Lua state per process, loaded from the operator's
// config.lua, implementing the Policy the pipeline calls (src/policy.ts)
// and the LibraryHost the libraries use (library.ts).  Its parts: the
// runtime's chunks (runtime-chunks.ts), the startup API (startup-api.ts),
// the address objects (address-book.ts), qrelay's own settings
// (settings.ts), the coroutine driver (coroutine-driver.ts) and the mails
// (mail-session.ts).
import { writeSync } from 'node:fs';
import { Observable, defer, map } from '../rx.js';
import { isValidAddress } from '../protocol/address.js';
import type { SocketAddress } from '../protocol/socket-address.js';
import type { MailInput, MailSession, Policy } from '../policy.js';
import { DEFAULT_TIMEOUTS } from '../timeouts.js';
import { AddressBook, addressPrimitives } from './address-book.js';
import { CoroutineDriver } from './coroutine-driver.js';
import { DRY_RUN_REFUSAL } from './errors.js';
import { installLibraries, shutdownLibraries } from './libraries.js';
import type { LibraryHost, Operation } from './library.js';
import { LuaState } from './lua-state.js';
import { LuaError, type BridgedFunction, type LuaArg, type LuaPushable } from './lua-values.js';
import { mailPrimitives, openMailSession, openMails, type MailSessionContext } from './mail-session.js';
import { loadRuntime, type RuntimeEntries } from './runtime-chunks.js';
import { readSettings, SETTING_GLOBALS, type Settings } from './settings.js';
import { logServerAddress, peekConfig, runConfig, startupPrimitives, type StartupHost } from './startup-api.js';
export type { ListenRequest, StartupHost } from './startup-api.js';

/** How a run of the script's `reload()` went: `none` when the script defines none. */
export type ReloadOutcome = { readonly kind: 'none' | 'ran' } | { readonly kind: 'failed'; readonly error: string };

/**
 * What the config decided besides its listeners, read once after it ran:
 * qrelay's own settings (settings.ts; undefined where not set: the
 * daemon's default) and the log server.
 */
export interface StartupSettings extends Omit<Settings, 'luaMemoryLimit'> {
  readonly logServer: SocketAddress | undefined;
}

export interface EngineOptions {
  /** How long Lua code may run without pausing before it gets an error. */
  readonly runTimeLimitMs?: number;
  /**
   * `qrelay check`: side effects of the script (sleeping, queries, sockets,
   * writing files, exiting) are not performed but recorded in `refused`.
   */
  readonly dryRun?: boolean;
}

export class LuaEngine implements Policy, LibraryHost {
  private readonly addresses = new AddressBook();
  private readonly mails = openMails();
  private readonly changedMails = new Set<number>();
  private entries!: RuntimeEntries;
  private driver!: CoroutineDriver;
  private sessions!: MailSessionContext;

  /** The side effects a dry run did not perform, e.g. `sleep`, `socket.connect`. */
  readonly refused: string[] = [];

  private installedLibraries: readonly string[] = [];

  private constructor(
    readonly lua: LuaState,
    readonly dryRun: boolean,
  ) {}

  /** The libraries installed for this config (libraries.ts: those it can reach), in installation order. */
  get libraries(): readonly string[] {
    return this.installedLibraries;
  }

  /** Creates the engine and runs the config file (docs/configuration.md). */
  static async load(configPath: string, host: StartupHost, options: EngineOptions = {}): Promise<LuaEngine> {
    const environment: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) environment[k] = v;
    const engine = new LuaEngine(await LuaState.create(environment), options.dryRun === true);
    engine.lua.limitRunTime(options.runTimeLimitMs ?? DEFAULT_TIMEOUTS.luaRunTimeMs);
    await engine.install(host, peekConfig(configPath));
    // The config runs in a setImmediate callback of its own, not in a
    // promise continuation: Node 20 cannot go on after code was stopped
    // from outside (src/streams/stuck-code.ts) inside a microtask that a
    // timer or setImmediate callback queued (every later callback is
    // stopped too, until the kernel kills the process); inside the
    // callback itself it can.
    await new Promise<void>((resolve, reject) =>
      setImmediate(() => {
        try {
          runConfig(engine.lua, engine.entries.load_config, configPath);
          resolve();
        } catch (e) {
          reject(e);
        }
      }),
    );
    return engine;
  }

  /** `config`: the config file's bytes, for the libraries' set-up (undefined when unreadable). */
  private async install(host: StartupHost, config: Buffer | undefined): Promise<void> {
    this.entries = loadRuntime(this.lua, {
      ...addressPrimitives(this.addresses),
      ...startupPrimitives(host),
      ...this.environmentPrimitives(),
      valid_address: ([text]) => typeof text === 'string' && isValidAddress(text),
      completed: ([id, ...values]) => this.driver.completed(Number(id), values),
      ...mailPrimitives(this.mails, this.changedMails),
    });
    this.driver = new CoroutineDriver(this.lua, this.entries.resume, this.entries.end_mails, this);
    this.sessions = { driver: this.driver, entries: this.entries, servers: this.addresses, mails: this.mails, changed: this.changedMails };
    this.installedLibraries = await installLibraries({ lua: this.lua, runtime: this.entries.table, host: this }, config);
  }

  /** print and os.exit (runtime/environment.lua). */
  private environmentPrimitives(): Record<string, BridgedFunction> {
    return {
      stdout: ([text]) => {
        writeSync(1, Buffer.from(String(text), 'latin1'));
      },
      exit: ([code]) => {
        if (this.dryRun) {
          this.refuse('os.exit');
          throw new LuaError(`os.exit(${String(code)}): ${DRY_RUN_REFUSAL}`);
        }
        process.exit(Number(code));
      },
    };
  }

  /**
   * Ends the startup phase (removes the startup globals); applies
   * `lua_memory_limit` and returns the other settings.  Throws ConfigError.
   */
  finishStartup(): StartupSettings {
    const { luaMemoryLimit, ...settings } = readSettings(this.lua.call(this.entries.settings, SETTING_GLOBALS));
    const [kind, value] = this.lua.call(this.entries.finish_startup, []);
    const logServer = logServerAddress(kind, value, this.addresses);
    if (luaMemoryLimit !== undefined) this.lua.limitMemory(luaMemoryLimit);
    return { ...settings, logServer };
  }

  /**
   * A call into Lua was stopped from outside (src/streams/stuck-code.ts):
   * the Lua state is half way through it and never runs again.  The mail
   * or run whose call it was fails with `reason`; every later call into
   * Lua fails with it at once (a mail: `Zscript failed`).
   */
  abandon(reason: string): void {
    this.lua.abandon(reason);
    this.driver.abandon(reason);
  }

  /** Whether a call into Lua is under way (or was stopped from outside: it never left). */
  get running(): boolean {
    return this.lua.running;
  }

  /** The daemon shuts down: the libraries close what they hold open (database connections). */
  shutdown(): void {
    shutdownLibraries();
  }

  /**
   * Looks up the host names of address objects again (after `reload()` on
   * SIGHUP); mail goes on meanwhile.  Emits the log lines (changes,
   * failures) once all lookups are done.
   */
  refreshAddresses(): Observable<string[]> {
    return defer(() => this.addresses.refresh());
  }

  // ---- the Policy -------------------------------------------------------

  open(listener: number, mail: MailInput): MailSession {
    return openMailSession(this.sessions, listener, mail);
  }

  /** Runs the script's global `reload()`; emits once when it is over. */
  reload(): Observable<ReloadOutcome> {
    return this.background$((id) => [this.entries.reload, [id]]).pipe(
      map((values): ReloadOutcome => (values[0] === 'error' ? { kind: 'failed', error: String(values[1]) } : { kind: values[0] === 'none' ? 'none' : 'ran' })),
    );
  }

  // ---- the LibraryHost --------------------------------------------------

  /** In a dry run: records that `what` was not performed. */
  refuse(what: string): void {
    this.refused.push(what);
  }

  addressById(id: number): SocketAddress | undefined {
    return this.addresses.first(id);
  }

  addOperation(name: string, operation: Operation): void {
    this.driver.addOperation(name, operation);
  }

  mailInput(id: number): MailInput | undefined {
    const mail = this.mails.get(id);
    // a library holds something of this mail (m.cgroup's descriptors): its close runs in Lua at once
    if (mail !== undefined) this.changedMails.add(id);
    return mail;
  }

  runTask(task: number): Observable<string | undefined> {
    return this.background$((id) => [this.entries.run_task, [id, task]]).pipe(map((values) => (values[0] === 'error' ? String(values[1]) : undefined)));
  }

  /** A coroutine that is not a mail's (reload, tasks): emits its final status values once. */
  private background$(entry: (id: number) => [number, LuaPushable[]]): Observable<LuaArg[]> {
    return defer(() => {
      const id = this.driver.newId();
      const [ref, args] = entry(id);
      return this.driver.run$(id, { start: () => this.driver.call(ref, args), project: (values) => values });
    });
  }
}
