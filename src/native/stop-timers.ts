// Timers that act on the process from outside its main thread, for code
// that never returns to the event loop (a Lua `__gc` metamethod or a
// library function such as string.find, which the run-time limit's hook
// cannot interrupt: docs/limits.md).  Nothing on the main thread can stop
// such code, and a JavaScript worker thread would cost its own V8 heap
// (several MB of the idle memory).  These are POSIX timers
// (timer_create on CLOCK_MONOTONIC) that the kernel and glibc run:
// - StopTimer.terminating(): when it expires, glibc starts a thread
//   (SIGEV_THREAD) that calls V8's `v8::Isolate::TerminateExecution` on
//   the main isolate, the public embedder API (reached, like
//   memory-pressure.ts, through the symbols the node binary exports for
//   native addons) that is safe to call from any thread.  V8 then throws
//   an uncatchable exception in whatever JavaScript or WebAssembly runs,
//   which unwinds it to the event loop.  The call's one argument is the
//   timer's sigval, which holds the isolate.
// - StopTimer.killing(): the kernel sends SIGKILL when it expires
//   (SIGEV_SIGNAL): for code blocked in a system call (reading a FIFO
//   nobody writes), which no termination reaches.
import { packageRequire } from '../package-dir.cjs';

// required, not imported: see src/package-dir.cts
const koffi = packageRequire('koffi') as typeof import('koffi');

const CLOCK_MONOTONIC = 1;
const SIGEV_SIGNAL = 0;
const SIGEV_THREAD = 2;
const SIGKILL = 9;

/** struct sigevent (glibc, 64 bits): sigev_value, sigev_signo, sigev_notify, then _sigev_thread's function and attributes. */
const SIGEVENT_SIZE = 64;
const SIGEV_SIGNO = 8;
const SIGEV_NOTIFY = 12;
const SIGEV_FUNCTION = 16;
/** struct itimerspec: it_interval (tv_sec, tv_nsec), it_value (tv_sec, tv_nsec). */
const ITIMERSPEC_SIZE = 32;
const IT_VALUE_SEC = 16;
const IT_VALUE_NSEC = 24;

interface TimerCalls {
  readonly create: (clock: number, event: Buffer, id: Buffer) => number;
  readonly settime: (id: bigint, flags: number, value: Buffer, old: null) => number;
  readonly gettime: (id: bigint, value: Buffer) => number;
  readonly remove: (id: bigint) => number;
  /** The main isolate, and the address of TerminateExecution; null where the node binary does not export them. */
  readonly terminate: { readonly isolate: bigint; readonly function: bigint } | null;
}

let calls: TimerCalls | undefined;

function timerCalls(): TimerCalls {
  if (calls !== undefined) return calls;
  const libc = koffi.load('libc.so.6');
  // timer_t is a pointer: passed and kept as an integer of its size
  calls = {
    create: libc.func('int timer_create(int, void *, _Out_ void *)') as TimerCalls['create'],
    settime: libc.func('int timer_settime(intptr_t, int, const void *, void *)') as TimerCalls['settime'],
    gettime: libc.func('int timer_gettime(intptr_t, _Out_ void *)') as TimerCalls['gettime'],
    remove: libc.func('int timer_delete(intptr_t)') as TimerCalls['remove'],
    terminate: lookUpTerminate(libc),
  };
  return calls;
}

function lookUpTerminate(libc: ReturnType<typeof koffi.load>): TimerCalls['terminate'] {
  try {
    const dlsym = libc.func('void *dlsym(void *, const char *)');
    const terminate: unknown = dlsym(null, '_ZN2v87Isolate18TerminateExecutionEv');
    const isolate: unknown = koffi.load(null).func('void *_ZN2v87Isolate10GetCurrentEv()')();
    if (terminate === null || isolate === null) return null;
    return { isolate: BigInt(koffi.address(isolate)), function: BigInt(koffi.address(terminate)) };
  } catch {
    // a node binary that does not export V8's API
    return null;
  }
}

/**
 * A one-shot timer that acts on the process when it expires (see the head
 * of this file): `terminating` stops the JavaScript or WebAssembly the
 * main thread runs, `killing` kills the process.  Create a terminating one
 * on the main thread: the isolate it stops is the one that created it.
 */
export class StopTimer {
  private readonly spec = Buffer.alloc(ITIMERSPEC_SIZE);
  private armed = false;

  private constructor(
    private readonly c: TimerCalls,
    private readonly id: bigint,
  ) {}

  /** Stops what runs; undefined where the node binary does not export V8's API or the kernel has no timer for it. */
  static terminating(): StopTimer | undefined {
    const c = timerCalls();
    if (c.terminate === null) return undefined;
    const event = Buffer.alloc(SIGEVENT_SIZE);
    event.writeBigUInt64LE(c.terminate.isolate, 0);
    event.writeInt32LE(SIGEV_THREAD, SIGEV_NOTIFY);
    event.writeBigUInt64LE(c.terminate.function, SIGEV_FUNCTION);
    return StopTimer.created(c, event);
  }

  /** Kills the process (SIGKILL), whatever it is doing then; undefined where the kernel refused the timer. */
  static killing(): StopTimer | undefined {
    const event = Buffer.alloc(SIGEVENT_SIZE);
    event.writeInt32LE(SIGKILL, SIGEV_SIGNO);
    event.writeInt32LE(SIGEV_SIGNAL, SIGEV_NOTIFY);
    return StopTimer.created(timerCalls(), event);
  }

  /** A new timer on CLOCK_MONOTONIC for `event`, or undefined when the kernel refused. */
  private static created(c: TimerCalls, event: Buffer): StopTimer | undefined {
    const id = Buffer.alloc(8);
    return c.create(CLOCK_MONOTONIC, event, id) === 0 ? new StopTimer(c, id.readBigInt64LE(0)) : undefined;
  }

  /** Expires `ms` from now (replacing the time it was set to before). */
  arm(ms: number): void {
    const spec = this.spec;
    spec.fill(0);
    spec.writeBigInt64LE(BigInt(Math.floor(ms / 1000)), IT_VALUE_SEC);
    spec.writeBigInt64LE(BigInt(Math.round((ms % 1000) * 1_000_000)), IT_VALUE_NSEC);
    this.c.settime(this.id, 0, spec, null);
    this.armed = true;
  }

  /** Whether it expired (and so acted) since it was last armed. */
  expired(): boolean {
    if (!this.armed) return false;
    this.c.gettime(this.id, this.spec);
    return this.spec.readBigInt64LE(IT_VALUE_SEC) === 0n && this.spec.readBigInt64LE(IT_VALUE_NSEC) === 0n;
  }

  /** Deletes the timer: it never expires again. */
  close(): void {
    this.c.remove(this.id);
    this.armed = false;
  }
}

/**
 * Has the kernel kill the process (SIGKILL) `ms` from now, whatever it is
 * doing then: the last resort for a process that must end and may not be
 * able to.  Returns false when the kernel refused the timer.
 */
export function killAfter(ms: number): boolean {
  const timer = StopTimer.killing();
  timer?.arm(ms);
  return timer !== undefined;
}
