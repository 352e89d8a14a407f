// The Lua engine: one Lua state per process, loaded from the operator's
// config.lua, implementing the Policy the pipeline calls (src/policy.ts).
import { readFileSync, writeSync } from 'node:fs';
import { Observable, Subscription, defer, map, timer } from 'rxjs';
import { logMails } from '../log.js';
import { luaMemoryLimitStops, luaTimeLimitStops } from '../metrics.js';
import { systemErrorText } from '../native/linux.js';
import { isValidAddress } from '../protocol/address.js';
import { DefaultPort, formatAddress, parseNumericAddress, type SocketAddress } from '../protocol/socket-address.js';
import type { Action, Decision, ListenTarget, MailInput, MailSession, MailState, Policy } from '../policy.js';
import { AddressBook, type ResolverKind } from './address-book.js';
import { LuaError, LuaState, type BridgedFunction, type LuaArg, type LuaPushable, type RawFunction } from './lua-state.js';
import { changeDirectory, configDirectory } from './config-path.js';
import { DEFAULT_TIMEOUTS } from '../timeouts.js';
import { ConfigError } from '../errors.js';
import { DRY_RUN_REFUSAL } from './errors.js';
import { installLibraries, shutdownLibraries } from './libraries.js';
import type { LibraryContext, LibraryHost, Operation } from './library.js';
import { readSettings, SETTING_GLOBALS, type Settings } from './settings.js';

export interface ListenRequest {
  readonly handler: number;
  readonly maxSize: number;
  readonly target: ListenTarget;
}

export interface StartupHost {
  /** Creates the listener(s) now; throws an Error whose message the script sees. */
  listen(request: ListenRequest): void;
  /** `metrics_listen(address)`: the error text for the script, or undefined when accepted. */
  metricsListen?(address: string): string | undefined;
}


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

interface Entry {
  load_config: number;
  finish_startup: number;
  settings: number;
  dispatch: number;
  resume: number;
  close: number;
  reload: number;
  run_task: number;
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

/** What a suspending operation gives back in a dry run: `sleep` returns at once, others fail. */
const DRY_RUN_RESULTS: Readonly<Record<string, LuaPushable[]>> = { sleep: [] };

function luaSource(name: string): Buffer {
  return readFileSync(new URL(`../../src/lua/${name}`, import.meta.url));
}

export class LuaEngine implements Policy, LibraryHost {
  private readonly addresses = new AddressBook();
  private readonly waiting = new Map<number, (values: LuaArg[]) => void>();
  private readonly operations = new Map<string, Operation>([
    ['sleep', (args) => timer(Math.max(0, Number(args[0]) * 1000)).pipe(map((): LuaPushable[] => []))],
  ]);
  private readonly mails = new Map<number, MailInput>();
  private nextId = 1;
  private entry!: Entry;

  /** The side effects a dry run did not perform, e.g. `sleep`, `socket.connect`. */
  readonly refused: string[] = [];

  private constructor(
    readonly lua: LuaState,
    readonly dryRun: boolean,
  ) {}

  /** In a dry run: records that `what` was not performed. */
  refuse(what: string): void {
    this.refused.push(what);
  }

  /** Creates the engine and runs the config file (docs/configuration.md). */
  static async load(configPath: string, host: StartupHost, options: EngineOptions = {}): Promise<LuaEngine> {
    const environment: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env)) if (v !== undefined) environment[k] = v;
    const engine = new LuaEngine(await LuaState.create(environment), options.dryRun === true);
    engine.lua.limitRunTime(options.runTimeLimitMs ?? DEFAULT_TIMEOUTS.luaRunTimeMs);
    await engine.install(host);
    engine.runConfig(configPath);
    return engine;
  }

  /**
   * Ends the startup phase (removes the startup globals); applies
   * `lua_memory_limit` and returns the other settings.  Throws ConfigError.
   */
  finishStartup(): StartupSettings {
    const { luaMemoryLimit, ...settings } = readSettings(this.lua.call(this.entry.settings, SETTING_GLOBALS));
    const [kind, value] = this.lua.call(this.entry.finish_startup, []);
    const logServer = this.logServerAddress(kind, value);
    if (luaMemoryLimit !== undefined) this.lua.limitMemory(luaMemoryLimit);
    return { ...settings, logServer };
  }

  /** The daemon shuts down: the libraries close what they hold open (database connections). */
  shutdown(): void {
    shutdownLibraries();
  }

  /** What the pipeline told the policy about mail `id` (while its connection lasts). */
  mailInput(id: number): MailInput | undefined {
    return this.mails.get(id);
  }

  /** Registers a suspending operation that library code reaches through `M.suspend(name, …)`. */
  addOperation(name: string, operation: Operation): void {
    this.operations.set(name, operation);
  }

  private async install(host: StartupHost): Promise<void> {
    const lua = this.lua;
    const raw: Record<string, RawFunction> = {
      newud: (L, state) => {
        state.newUserdata(L, 1);
        return 1;
      },
    };
    const primitives: Record<string, BridgedFunction> = {
      address_tostring: ([id]) => formatAddress(this.addresses.first(Number(id))!),
      resolve: ([kind, text]) => wrapAddressError(() => this.addresses.resolve(kind as ResolverKind, String(text))),
      check_address: ([text]) => {
        wrapAddressError(() => this.addresses.numericAddress(String(text)));
      },
      valid_address: ([text]) => typeof text === 'string' && isValidAddress(text),
      listen: ([handler, address, size]) => {
        const a = String(address);
        const target: ListenTarget = a.startsWith('@')
          ? { kind: 'abstract', name: Buffer.from(a.slice(1), 'latin1') }
          : { kind: 'path', path: a };
        if (target.kind === 'path' ? a.length > 107 : a.length > 108) throw new LuaError('Path is too long');
        hostCall(() => host.listen({ handler: Number(handler), maxSize: Number(size), target }));
      },
      metrics_listen: ([address]) => (host.metricsListen === undefined ? 'metrics_listen is not available here' : host.metricsListen(String(address))),
      listen_systemd: ([handler, size]) => {
        hostCall(() => host.listen({ handler: Number(handler), maxSize: Number(size), target: { kind: 'systemd' } }));
      },
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
      completed: ([id, ...values]) => {
        const resume = this.waiting.get(Number(id));
        if (resume !== undefined) queueMicrotask(() => resume(values));
      },
    };
    const compat = checkLoad(lua.load(luaSource('compat.lua'), '=compat'));
    lua.callForRef(compat, primitives, raw);
    const runtime = checkLoad(lua.load(luaSource('runtime.lua'), '=runtime'));
    const table = lua.callForRef(runtime, primitives, raw);
    const context: LibraryContext = { lua, runtime: table, host: this };
    await installLibraries(context);
    this.entry = {
      load_config: lua.fieldRef(table, 'load_config'),
      finish_startup: lua.fieldRef(table, 'finish_startup'),
      settings: lua.fieldRef(table, 'settings'),
      dispatch: lua.fieldRef(table, 'dispatch'),
      resume: lua.fieldRef(table, 'resume'),
      close: lua.fieldRef(table, 'close'),
      reload: lua.fieldRef(table, 'reload'),
      run_task: lua.fieldRef(table, 'run_task'),
    };
  }

  /** The address of object `id` (the first, for objects holding several). */
  addressById(id: number): SocketAddress | undefined {
    return this.addresses.first(id);
  }

  /**
   * Looks up the host names of address objects again (after `reload()` on
   * SIGHUP); mail goes on meanwhile.  Emits the log lines (changes,
   * failures) once all lookups are done.
   */
  refreshAddresses(): Observable<string[]> {
    return defer(() => this.addresses.refresh());
  }

  private runConfig(configPath: string): void {
    const directory = configDirectory(configPath);
    try {
      if (directory !== undefined) changeDirectory(directory);
    } catch (e) {
      // name the file, not only its folder (e.g. the default config on a fresh install)
      throw new ConfigError(`cannot open ${configPath}: ${(e as Error).message}`);
    }
    let source: Buffer;
    try {
      source = readFileSync(configPath);
    } catch (e) {
      throw new ConfigError(`cannot open ${configPath}: ${systemErrorText(e)}`);
    }
    const [error] = this.lua.call(this.entry.load_config, [source, '@' + configPath]);
    changeDirectory('/');
    if (typeof error === 'string') throw new ConfigError(error);
  }

  private logServerAddress(kind: LuaArg, value: LuaArg): SocketAddress | undefined {
    switch (kind) {
      case 'none':
        return undefined;
      case 'string':
        try {
          return parseNumericAddress(String(value), DefaultPort.pond, 'dgram');
        } catch (e) {
          throw new ConfigError((e as Error).message);
        }
      case 'address':
        return this.addresses.first(Number(value));
      default:
        throw new ConfigError(`log_server must be an address string or an address object, not a ${String(value)}`);
    }
  }

  // ---- the Policy -------------------------------------------------------

  open(listener: number, mail: MailInput): MailSession {
    const id = this.nextId++;
    let closed: MailState | undefined;
    let started = false;
    this.mails.set(id, mail);
    const decision$ = this.coroutine$(id, () => {
      if (started) return ['error', 'the handler runs once per mail'];
      started = true;
      const c = mail.credentials;
      return this.callLua(this.entry.dispatch, [listener, id, mail.sender, c?.pid, c?.uid, c?.gid, ...mail.recipients]);
    }).pipe(map((values) => this.decision(values)));
    return {
      decision$,
      close: () => {
        if (closed === undefined) {
          this.mails.delete(id);
          const values = started ? this.callLua(this.entry.close, [id]) : [];
          closed = values.length > 0 ? readMailState(values, 0).state : { sender: mail.sender, account: undefined, headers: [] };
        }
        return closed;
      },
    };
  }

  private callLua(ref: number, args: readonly LuaPushable[]): LuaArg[] {
    let values: LuaArg[];
    try {
      values = this.lua.call(ref, args);
    } catch (e) {
      return ['error', (e as Error).message];
    }
    // a coroutine stopped by the run-time limit or the heap cap is abandoned as failed
    const stopped = this.lua.takeStopped();
    if (stopped === undefined) return values;
    (stopped.startsWith('Lua memory limit') ? luaMemoryLimitStops : luaTimeLimitStops).inc();
    return ['error', stopped];
  }

  private decision(values: LuaArg[]): Decision {
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
    const { state, next } = readMailState(values, 1);
    try {
      return { kind: 'action', action: this.readAction(values, next), mail: state };
    } catch (e) {
      return { kind: 'script-failed', log: (e as Error).message };
    }
  }

  private readAction(values: LuaArg[], at: number): Action {
    const kind = values[at];
    switch (kind) {
      case 'discard':
      case 'reject':
        return { kind };
      case 'connect':
        return this.readConnect(values, at + 1);
      case 'exec':
      case 'exec_raw': {
        const timeout = values[at + 1];
        const argc = Number(values[at + 2]);
        const argv = values.slice(at + 3, at + 3 + argc).map(String);
        const envCount = values[at + 3 + argc];
        const env = envCount === false ? undefined : values.slice(at + 4 + argc, at + 4 + argc + Number(envCount)).map(String);
        return { kind, argv, env, timeoutMs: typeof timeout === 'number' ? timeout * 1000 : undefined };
      }
      default:
        throw new Error(`Unknown action ${String(kind)}`);
    }
  }

  /** The fields after `'connect'` (runtime.lua's action_values): order, timeouts, servers. */
  private readConnect(values: LuaArg[], at: number): Action {
    const [order, connectTimeout, timeout, count] = values.slice(at, at + 4);
    const servers: SocketAddress[] = [];
    for (let i = 0, v = at + 4; i < Number(count); i++, v += 2) {
      if (values[v] === 'string') {
        servers.push(this.addresses.numericAddress(String(values[v + 1])));
        continue;
      }
      const listed = this.addresses.addresses(Number(values[v + 1]));
      if (listed === undefined) throw new Error('Unknown address object');
      servers.push(...listed);
    }
    return {
      kind: 'connect',
      servers,
      order: order === 'random' ? 'random' : 'sequential',
      connectTimeoutMs: typeof connectTimeout === 'number' ? connectTimeout * 1000 : undefined,
      timeoutMs: typeof timeout === 'number' ? timeout * 1000 : undefined,
    };
  }

  /** Runs the script's global `reload()`; emits once when it is over. */
  reload(): Observable<ReloadOutcome> {
    return this.backgroundValues$((id) => [this.entry.reload, [id]]).pipe(
      map((values): ReloadOutcome => (values[0] === 'error' ? { kind: 'failed', error: String(values[1]) } : { kind: values[0] === 'none' ? 'none' : 'ran' })),
    );
  }

  /**
   * Runs a function a library registered with `M.add_task` (runtime.lua) as
   * a new managed coroutine; emits once when it is over (errors as text).
   */
  runTask(task: number): Observable<string | undefined> {
    return this.background$((id) => [this.entry.run_task, [id, task]]);
  }

  /** A coroutine that is not a mail's (reload, tasks): emits its error text or undefined once. */
  private background$(entry: (id: number) => [number, LuaPushable[]]): Observable<string | undefined> {
    return this.backgroundValues$(entry).pipe(map((values) => (values[0] === 'error' ? String(values[1]) : undefined)));
  }

  private backgroundValues$(entry: (id: number) => [number, LuaPushable[]]): Observable<LuaArg[]> {
    return defer(() => {
      const id = this.nextId++;
      const [ref, args] = entry(id);
      return this.coroutine$(id, () => this.callLua(ref, args));
    });
  }

  /**
   * Drives the managed coroutine `id` that `start` begins: runs the
   * operations it suspends for (sleep …), waits while it yields on its
   * own, and emits its final status values once.  Unsubscribing abandons it.
   */
  private coroutine$(id: number, start: () => LuaArg[]): Observable<LuaArg[]> {
    return new Observable<LuaArg[]>((subscriber) => {
      const subscription = new Subscription();
      const step = (values: LuaArg[]): void => {
        const status = values[0];
        if (status === 'pending' && this.dryRun) {
          const name = String(values[1]);
          this.refuse(name);
          return step(this.callLua(this.entry.resume, [id, ...(DRY_RUN_RESULTS[name] ?? ['error', DRY_RUN_REFUSAL])]));
        }
        if (status === 'pending') {
          const operation = this.operations.get(String(values[1]));
          if (operation === undefined) return step(['error', `Unknown operation ${String(values[1])}`]);
          subscription.add(
            operation(values.slice(2)).subscribe({
              next: (results) => step(this.callLua(this.entry.resume, [id, ...results])),
              error: (e: unknown) => step(['error', e instanceof Error ? e.message : String(e)]),
            }),
          );
          return;
        }
        if (status === 'wait') {
          this.waiting.set(id, step);
          subscription.add(() => this.waiting.delete(id));
          return;
        }
        this.waiting.delete(id);
        subscriber.next(values);
        subscriber.complete();
      };
      step(start());
      return subscription;
    });
  }
}

function readMailState(values: LuaArg[], at: number): { state: MailState; next: number } {
  const sender = String(values[at]);
  const account = values[at + 1];
  const count = Number(values[at + 2]);
  const headers: Buffer[] = [];
  for (let i = 0; i < count; i++) headers.push(Buffer.from(String(values[at + 3 + i]), 'latin1'));
  return {
    state: { sender, account: typeof account === 'string' ? account : undefined, headers },
    next: at + 3 + count,
  };
}

function checkLoad(result: number | string): number {
  if (typeof result === 'string') throw new Error(`internal Lua chunk failed to load: ${result}`);
  return result;
}

function wrapAddressError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new LuaError((e as Error).message);
  }
}

function hostCall(f: () => void): void {
  try {
    f();
  } catch (e) {
    throw e instanceof LuaError ? e : new LuaError((e as Error).message);
  }
}
