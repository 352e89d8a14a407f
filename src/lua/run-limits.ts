// The limits on running Lua code: the run-time limit (a count hook) and
// the heap cap (a counting allocator, heap-limit.ts).  LuaState enters and
// leaves them around every call from JavaScript into Lua.
import { HeapLimit } from './heap-limit.js';
import { LUA_REGISTRYINDEX, type EmscriptenModule, type LuaC } from './lua-c-api.js';

/** How often (in VM instructions) the hook checks the run-time limit and the heap cap. */
const HOOK_INSTRUCTIONS = 1000;
const LUA_MASKCOUNT = 8;

export class RunLimits {
  /** When the outermost call from JavaScript into Lua started (performance.now()). */
  private runStarted = 0;
  private callDepth = 0;
  /** Why the current run was stopped (run-time limit, heap cap), once set. */
  private stopped: string | undefined;
  private readonly heap = new HeapLimit();
  /** The Lua state's allocator (lua_setallocf), which counts against the heap cap. */
  readonly allocator: number;
  /** Registry reference of the standard collectgarbage, set once the libraries are open. */
  collectGarbageRef = 0;
  /** The run-time hook (0 until limitRunTime), the main thread, and whether that thread has the hook now. */
  private hook = 0;
  private mainThread = 0;
  private mainHooked = false;

  /** `pushText` pushes a message onto the stack of `L` (the bridge's). */
  constructor(
    private readonly m: EmscriptenModule,
    private readonly c: LuaC,
    private readonly pushText: (L: number, message: string) => void,
  ) {
    this.allocator = m.addFunction(this.heap.allocator(c.realloc, c.free), 'iiiii');
  }

  /** A call from JavaScript into Lua begins; the outermost one starts the clock and the heap cap. */
  enter(L: number): void {
    if (this.callDepth++ === 0) {
      this.runStarted = performance.now();
      this.stopped = undefined;
      this.collectNearCap(L);
      this.heap.begin();
    }
  }

  /** A full collection when the heap is near the cap (see HeapLimit.shouldCollect). */
  private collectNearCap(L: number): void {
    if (!this.heap.shouldCollect()) return;
    this.c.lua_rawgeti(L, LUA_REGISTRYINDEX, BigInt(this.collectGarbageRef));
    if (this.c.lua_pcallk(L, 0, 0, 0, 0, 0) !== 0) this.c.lua_settop(L, -2);
    this.heap.collected();
  }

  leave(): void {
    if (--this.callDepth === 0) this.heap.end();
  }

  /**
   * Whether a call from JavaScript into Lua is under way.  Also true after
   * such a call was stopped from outside (src/streams/stuck-code.ts): it
   * never left.
   */
  get running(): boolean {
    return this.callDepth > 0;
  }

  /**
   * Caps what the Lua state may hold.  An allocation past the cap fails
   * (Lua's "not enough memory" error), and the run that hit it is stopped
   * at the next hook check even if the script catches that error.
   */
  limitMemory(bytes: number): void {
    this.heap.limit = bytes;
  }

  /** Bytes the Lua state holds now. */
  get memoryUsed(): number {
    return this.heap.used;
  }

  /**
   * Stops Lua code that runs longer than `ms` without returning to the
   * event loop (a handler stuck in a loop), so one bad mail cannot stall
   * every other one, and code that went on after hitting the heap cap.
   * Checked every 1000 VM instructions by a hook that every coroutine
   * has (the driver's get it from hookThread, those a script makes inherit
   * it; scripts cannot remove it: runtime/environment.lua wraps
   * debug.sethook).  Inside a coroutine the hook yields — no `pcall` can
   * catch that — and the caller learns of it through `takeStopped()`;
   * elsewhere (the config load) it raises an error.
   */
  limitRunTime(mainThread: number, ms: number): void {
    const tooLong = `Lua code ran for more than ${ms / 1000} s without pausing`;
    const hook = this.m.addFunction((L: number) => {
      if (this.heap.exceeded) this.stopped = this.heap.message();
      else if (performance.now() - this.runStarted > ms) this.stopped = tooLong;
      else {
        this.collectNearCap(L);
        return 0;
      }
      if (this.c.lua_isyieldable(L) !== 0) return this.c.lua_yieldk(L, 0, 0, 0);
      this.pushText(L, this.stopped);
      return this.c.lua_error(L);
    }, 'vii');
    this.hook = hook;
    this.mainThread = mainThread;
    this.hookMain(true);
  }

  /** Gives the thread `L` the run-time hook (a coroutine made while the main thread runs without it). */
  hookThread(L: number): void {
    if (this.hook !== 0) this.c.lua_sethook(L, this.hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
  }

  /**
   * Whether the main thread runs with the hook (and the coroutines it makes
   * get it).  A count hook costs at every VM instruction, not only every
   * 1000th: Lua calls it through luaG_traceexec each time.  The mail entry
   * points of the runtime (driver.lua: dispatch, resume, close, end_mails)
   * run only the runtime's own code on the main thread, and the handler's
   * coroutine gets the hook of its own (hookThread); everything else (the
   * config, reload(), tasks, the settings) runs with it.  Switched only
   * when the kind of call changes.
   */
  hookMain(on: boolean): void {
    if (this.hook === 0 || on === this.mainHooked) return;
    this.mainHooked = on;
    if (on) this.c.lua_sethook(this.mainThread, this.hook, LUA_MASKCOUNT, HOOK_INSTRUCTIONS);
    else this.c.lua_sethook(this.mainThread, 0, 0, 0);
  }

  /** Why the last call was stopped (run-time limit or heap cap: its message), once. */
  takeStopped(): string | undefined {
    const message = this.stopped ?? (this.heap.reached ? this.heap.message() : undefined);
    this.stopped = undefined;
    this.heap.forget();
    return message;
  }
}
