// The JavaScript half of the coroutine driver (runtime/driver.lua): every
// handler run, reload() run and library task is a managed coroutine with
// an id chosen here.  The driver runs the operations a coroutine suspends
// for (sleep, pg_execute …), resumes it with their results, waits while
// it yields on its own, and emits its final status values once.
import { Observable, Subscription, map, timer, type Subscriber } from '../rx.js';
import { luaMemoryLimitStops, luaTimeLimitStops } from '../metrics.js';
import { DRY_RUN_REFUSAL } from './errors.js';
import type { LibraryHost, Operation } from './library.js';
import type { LuaState } from './lua-state.js';
import type { LuaArg, LuaPushable } from './lua-values.js';

/** What a suspending operation gives back in a dry run: `sleep` returns at once, others fail. */
const DRY_RUN_RESULTS: Readonly<Record<string, LuaPushable[]>> = { sleep: [] };

export class CoroutineDriver {
  /** What its runs (run$) share with the driver, handed to them and to no one else. */
  private readonly runs: DriverRuns;
  private nextId = 1;
  /** Mails whose connection ended while no Lua code ran, not yet made stale on the Lua side (see endLater). */
  private ended: number[] = [];

  /** `resume`, `endMails`: the registry references of driver.lua's M.resume and M.end_mails. */
  constructor(
    private readonly lua: LuaState,
    resume: number,
    private readonly endMails: number,
    host: Pick<LibraryHost, 'dryRun' | 'refuse'>,
  ) {
    this.runs = new DriverRuns(this, resume, host);
  }

  /**
   * The connection of mail `id` ended and the engine needs nothing more
   * from Lua for it: its mail object is made stale at the start of the next
   * call into Lua, before any script code runs (so no script sees the
   * difference), which saves a call per mail.
   */
  endLater(id: number): void {
    this.ended.push(id);
  }

  /** Like call(), with the ids of ended mails appended to `args` (for M.dispatch, which makes them stale first). */
  callEnding(ref: number, args: readonly LuaPushable[]): LuaArg[] {
    if (this.ended.length === 0) return this.invoke(ref, args, false);
    const ended = this.ended;
    this.ended = [];
    return this.invoke(ref, [...args, ...ended], false);
  }

  /** A new coroutine id (mails, reload runs and tasks share them). */
  newId(): number {
    return this.nextId++;
  }

  /** Registers a suspending operation that Lua code reaches through `M.suspend(name, …)`. */
  addOperation(name: string, operation: Operation): void {
    this.runs.operations.set(name, operation);
  }

  /** The `completed` primitive: a coroutine a script resumed itself went on to `values`. */
  completed(id: number, values: LuaArg[]): void {
    const run = this.runs.waiting.get(id);
    if (run !== undefined) queueMicrotask(() => run.step(values));
  }

  /**
   * Calls the driver's entry point `ref` (after making the ended mails
   * stale); a Lua error, and a run stopped by the run-time limit or the
   * heap cap, become `'error', text` (the stopped coroutine is abandoned
   * as failed).  `mainHook` false for the mail entry points (resume,
   * close), which run only the runtime's code on the main thread (see
   * RunLimits.hookMain).
   */
  call(ref: number, args: readonly LuaPushable[], mainHook = true): LuaArg[] {
    if (this.ended.length > 0) {
      const ended = this.ended;
      this.ended = [];
      this.invoke(this.endMails, ended, mainHook);
    }
    return this.invoke(ref, args, mainHook);
  }

  private invoke(ref: number, args: readonly LuaPushable[], mainHook: boolean): LuaArg[] {
    let values: LuaArg[];
    try {
      values = this.lua.call(ref, args, mainHook);
    } catch (e) {
      return ['error', (e as Error).message];
    }
    const stopped = this.lua.takeStopped();
    if (stopped === undefined) return values;
    (stopped.startsWith('Lua memory limit') ? luaMemoryLimitStops : luaTimeLimitStops).inc();
    return ['error', stopped];
  }

  /**
   * Drives the managed coroutine `id` that `coroutine.start()` begins and
   * emits its final status values (driver.lua lists them) once, as
   * `coroutine.project` makes them, then completes.  A coroutine that
   * finishes at once (a handler that decides without waiting) costs no
   * Subscription.  Unsubscribing abandons it.
   *
   * A bound module function and a class (CoroutineRun), not function
   * literals made per mail: measured against the closure version in the
   * same runs (2 KB x 8, 6-8 rounds, three runs), the closures cost
   * 1.02x / 1.26x / 1.07x the CPU per relayed mail and 1.01x / 1.12x /
   * 1.06x per discarded one.
   */
  run$<T>(id: number, coroutine: Coroutine<T>): Observable<T> {
    return new Observable<T>((subscribeRun<T>).bind(undefined, this.runs, id, coroutine));
  }

  /**
   * The call into Lua under way was stopped from outside and never
   * returned (the engine is abandoned: LuaState.abandon): the run that
   * made it ends with the error `reason`, as if its coroutine had failed,
   * and so does every run suspended (in `sleep`, a query, waiting for a
   * script), at once rather than when it would have been resumed.
   */
  abandon(reason: string): void {
    // the one under way first (it may be among the suspended: resumed from there)
    const runs = new Set<CoroutineRun<unknown>>();
    if (this.runs.current !== undefined) runs.add(this.runs.current);
    this.runs.current = undefined;
    for (const run of this.runs.suspended) runs.add(run);
    for (const run of runs) run.fail(reason);
  }
}

/** The driver's state that its runs use: suspending operations, the runs waiting for a script, the resume call. */
class DriverRuns {
  /** Runs waiting (status `wait`) until a script resumes their coroutine: `completed` goes to them. */
  readonly waiting = new Map<number, CoroutineRun<unknown>>();
  /** Runs suspended in an operation or waiting for a script (see CoroutineDriver.abandon). */
  readonly suspended = new Set<CoroutineRun<unknown>>();
  /** The run whose call into Lua (its start or a resumption) is under way: see CoroutineDriver.abandon. */
  current: CoroutineRun<unknown> | undefined = undefined;
  readonly operations = new Map<string, Operation>([
    ['sleep', (args) => timer(Math.max(0, Number(args[0]) * 1000)).pipe(map((): LuaPushable[] => []))],
  ]);

  constructor(
    private readonly driver: CoroutineDriver,
    private readonly resume: number,
    readonly host: Pick<LibraryHost, 'dryRun' | 'refuse'>,
  ) {}

  /** Resumes the coroutine `id` of `run` with `results` (driver.lua's M.resume). */
  resumeWith(run: CoroutineRun<unknown>, id: number, results: readonly LuaPushable[]): LuaArg[] {
    this.current = run;
    const values = this.driver.call(this.resume, [id, ...results], false);
    this.current = undefined;
    return values;
  }
}

function subscribeRun<T>(runs: DriverRuns, id: number, coroutine: Coroutine<T>, subscriber: Subscriber<T>): CoroutineRun<T> {
  const run = new CoroutineRun(runs, id, coroutine, subscriber);
  runs.current = run as CoroutineRun<unknown>;
  const values = coroutine.start();
  runs.current = undefined;
  run.step(values);
  return run;
}

/** What run$ drives: the call that starts the coroutine, and what its final values become. */
export interface Coroutine<T> {
  start(): LuaArg[];
  project(values: LuaArg[]): T;
}

/** One subscription to run$: steps the coroutine through its statuses; its teardown. */
class CoroutineRun<T> {
  private subscription: Subscription | undefined = undefined;

  constructor(
    private readonly runs: DriverRuns,
    private readonly id: number,
    private readonly coroutine: Coroutine<T>,
    private readonly subscriber: Subscriber<T>,
  ) {}

  private pending(): Subscription {
    return (this.subscription ??= new Subscription());
  }

  step(values: LuaArg[]): void {
    const { runs, id } = this;
    const status = values[0];
    if (status === 'pending' && runs.host.dryRun) {
      const name = String(values[1]);
      runs.host.refuse(name);
      return this.step(runs.resumeWith(this as CoroutineRun<unknown>, id, DRY_RUN_RESULTS[name] ?? ['error', DRY_RUN_REFUSAL]));
    }
    if (status === 'pending') {
      const operation = runs.operations.get(String(values[1]));
      if (operation === undefined) return this.step(['error', `Unknown operation ${String(values[1])}`]);
      runs.suspended.add(this as CoroutineRun<unknown>);
      this.pending().add(
        operation(values.slice(2)).subscribe({
          next: (results) => this.step(runs.resumeWith(this as CoroutineRun<unknown>, id, results)),
          error: (e: unknown) => this.step(['error', e instanceof Error ? e.message : String(e)]),
        }),
      );
      return;
    }
    if (status === 'wait') {
      runs.waiting.set(id, this as CoroutineRun<unknown>);
      runs.suspended.add(this as CoroutineRun<unknown>);
      this.pending().add(() => runs.waiting.delete(id));
      return;
    }
    if (this.subscription !== undefined) {
      runs.waiting.delete(id);
      runs.suspended.delete(this as CoroutineRun<unknown>);
    }
    this.subscriber.next(this.coroutine.project(values));
    this.subscriber.complete();
  }

  /** Ends the run with the error `reason` now (the engine is abandoned), dropping what it is suspended in. */
  fail(reason: string): void {
    this.subscription?.unsubscribe();
    this.step(['error', reason]);
  }

  unsubscribe(): void {
    if (this.subscription === undefined) return;
    this.runs.suspended.delete(this as CoroutineRun<unknown>);
    this.subscription.unsubscribe();
  }
}
