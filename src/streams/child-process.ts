// A child process of `exec`/`exec_raw` as an Observable resource
// (docs/actions.md): subscribing spawns it with real pipes on stdin and stdout
// (stderr either the daemon's own or the stdout pipe), unsubscribing closes
// qrelay's pipe ends and terminates the child if it still runs.
//
// Node's child_process rather than execa, by measurement.  execa 9 can
// spawn this child (it passes any descriptor number on as fd 0, 1 or 2),
// and its `forceKillAfterDelay` is the SIGTERM→SIGKILL escalation below;
// but its machinery per call (option normalisation, a dozen promises and
// abort listeners per child) made a daemon spend 1.2× the CPU per exec_raw
// mail to /bin/true (median of 10 interleaved rounds against this file; an
// identical second daemon in the same run: 1.00), and loading it costs
// about 3 MB of heap.  The rest it could not have done anyway: qrelay's own
// pipes (a `'pipe'` of execa or Node gives the child socket pairs, and
// exec_raw needs one pipe as fd 1 and 2: test/child-process.test.ts), the
// 255-byte output window read from that pipe, and the kill at shutdown
// (execa's `cleanup` sends SIGTERM alone, and only when the daemon exits).
import type { ChildProcess } from 'node:child_process';
import { packageRequire } from '../package-dir.cjs';
import { Socket } from 'node:net';
import { constants } from 'node:os';
import { AsyncSubject, Observable, fromEvent, take, takeUntil, timer } from '../rx.js';
import { closeFd, createPipe, SystemError, systemErrorText, type PipeEnds } from '../native/linux.js';
import { logDomain } from '../log.js';

export type ExitStatus =
  | { readonly kind: 'exited'; readonly code: number }
  | { readonly kind: 'signaled'; readonly signal: number };

export interface ChildSpec {
  /** argv[0] is the program, passed to the child as given. */
  readonly argv: readonly string[];
  /** `NAME=VALUE` entries; undefined means an empty environment. */
  readonly env: readonly string[] | undefined;
  /** Log domain for lines about the child itself. */
  readonly domain: 'exec' | 'exec_raw';
  /** fd 2: the daemon's own stderr, or the same pipe as stdout. */
  readonly stderr: 'daemon' | 'output';
  /** SIGTERM → SIGKILL delay when the child is terminated (docs/actions.md). */
  readonly killGraceMs: number;
}

export interface RunningChild {
  /** qrelay's (non-blocking, close-on-exec) write end of the child's stdin pipe. */
  readonly stdin: Socket;
  /** qrelay's read end of the child's stdout pipe (also its stderr when merged). */
  readonly output: Socket;
  /** Emits the exit status once the child has exited and was reaped, then completes; replays it. */
  readonly exit$: Observable<ExitStatus>;
}

/** The child could not be started; `reason` is the system error behind it. */
export class ChildStartFailure extends Error {
  constructor(
    readonly reason: unknown,
    /** The program that could not be started (argv[0]). */
    readonly program: string,
  ) {
    super('Failed to execute process');
  }
}

/** Children not yet reaped, for terminateAllChildren(). */
const running = new Set<ChildProcess>();

/** C strings end at the first NUL (the original passes char pointers). */
function cString(text: string): string {
  const nul = text.indexOf('\0');
  return nul < 0 ? text : text.slice(0, nul);
}

function environment(entries: readonly string[] | undefined): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of entries ?? []) {
    const text = cString(entry);
    const eq = text.indexOf('=');
    // Node re-joins key and value with '=', giving back the same entry.  An
    // entry cut before its '=' by a NUL cannot be expressed and is left out.
    if (eq >= 0) env[text.slice(0, eq)] = text.slice(eq + 1);
  }
  return env;
}

/**
 * libuv execs with execvp(), which would search PATH (or glibc's default
 * path) for a name without '/'; the original execs such a name relative to
 * the working directory, which is '/' for the child.
 */
function executablePath(program: string): string {
  return program.includes('/') ? program : `./${program}`;
}

/** Started and not yet reaped.  Without a pid, libuv would signal pid 0: our own process group. */
function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

function exitStatus(child: ChildProcess): ExitStatus {
  // Node reports a death by a real-time signal (which it has no name for)
  // as exit code 0; nothing more precise is available once libuv reaped it.
  if (child.signalCode !== null) return { kind: 'signaled', signal: constants.signals[child.signalCode] ?? 0 };
  return { kind: 'exited', code: child.exitCode ?? 0 };
}

function exitOf(child: ChildProcess): Observable<ExitStatus> {
  return new Observable<ExitStatus>((subscriber) => {
    const emit = (): void => {
      subscriber.next(exitStatus(child));
      subscriber.complete();
    };
    if (child.exitCode !== null || child.signalCode !== null) {
      emit();
      return;
    }
    child.once('exit', emit);
    return () => child.off('exit', emit);
  });
}

/**
 * Signals the child by pid: Node keeps the (possibly zombie) child until its
 * own SIGCHLD handling reaps it and then no longer signals, so the pid
 * cannot have been reused — the guarantee the original gets from a pidfd.
 */
function sendSignal(child: ChildProcess, signal: 'SIGTERM' | 'SIGKILL'): void {
  if (isRunning(child)) child.kill(signal);
}

/** SIGTERM now, SIGKILL if still alive after the grace period (docs/actions.md). */
function terminate(child: ChildProcess, killGraceMs: number): void {
  if (!isRunning(child)) return;
  sendSignal(child, 'SIGTERM');
  // Outlives the mail on purpose; ends as soon as the child is reaped.
  timer(killGraceMs)
    .pipe(takeUntil(exitOf(child)))
    .subscribe(() => sendSignal(child, 'SIGKILL'));
}

/** How many children run (or are not yet reaped). */
export function runningChildCount(): number {
  return running.size;
}

/** Daemon shutdown: SIGTERM and at once SIGKILL to every running child. */
export function terminateAllChildren(): void {
  for (const child of running) {
    sendSignal(child, 'SIGTERM');
    sendSignal(child, 'SIGKILL');
  }
}

/**
 * node:child_process, loaded with the first child: it brings node:dgram and
 * the IPC machinery along (about 0.4 MB of an idle daemon), which a config
 * without exec/exec_raw never needs.
 */
let childProcessModule: typeof import('node:child_process') | undefined;

function spawnChild(spec: ChildSpec, stdinPipe: PipeEnds, outputPipe: PipeEnds): ChildProcess {
  const [program = '', ...args] = spec.argv.map(cString);
  childProcessModule ??= packageRequire('node:child_process') as typeof import('node:child_process');
  return childProcessModule.spawn(executablePath(program), args, {
    argv0: program,
    env: environment(spec.env),
    cwd: '/',
    stdio: [stdinPipe.readFd, outputPipe.writeFd, spec.stderr === 'output' ? outputPipe.writeFd : 2],
  });
}

/** Keeps the registry and the child-domain log lines (docs/actions.md). */
function watchExit(child: ChildProcess, domain: ChildSpec['domain']): void {
  running.add(child);
  child.once('exit', () => {
    running.delete(child);
    const status = exitStatus(child);
    if (status.kind === 'signaled' && status.signal !== constants.signals.SIGTERM) logDomain(domain, `died from signal ${status.signal}`);
  });
}

/**
 * Always listened to, so that no 'error' event goes unhandled (a spawn
 * failure reported after the mail was abandoned, a failed kill).
 */
function logKillErrors(child: ChildProcess, domain: ChildSpec['domain']): void {
  child.on('error', (e: NodeJS.ErrnoException) => {
    if (e.syscall === 'kill' && e.code !== 'ESRCH') logDomain(domain, `failed to kill child process: ${systemErrorText(e)}`);
  });
}

function pipeSocket(fd: number, direction: 'read' | 'write'): Socket {
  const socket = new Socket({ fd, readable: direction === 'read', writable: direction === 'write', allowHalfOpen: true });
  socket.on('error', () => {
    // reported through the write callback or the chunk stream that uses it
  });
  return socket;
}

function closePipeEnds(...fds: number[]): void {
  for (const fd of fds) closeFd(fd);
}

/**
 * Spawns on subscribe and emits the running child once; never completes.
 * The pipes are handed out just before the program is started: whatever the
 * subscriber writes synchronously is in the pipe by then, so a child that
 * exits without reading a message that fits into the pipe causes no EPIPE.
 */
export function childProcess(spec: ChildSpec): Observable<RunningChild> {
  return new Observable<RunningChild>((subscriber) => {
    if (spec.argv[0] === '') {
      // execve("") fails with ENOENT; Node refuses an empty file name outright.
      subscriber.error(new ChildStartFailure(new SystemError('execve', 2), spec.argv[0]!));
      return;
    }
    let stdinPipe: PipeEnds;
    let outputPipe: PipeEnds;
    try {
      stdinPipe = createPipe();
    } catch (e) {
      subscriber.error(new ChildStartFailure(e, spec.argv[0]!));
      return;
    }
    try {
      outputPipe = createPipe();
    } catch (e) {
      closePipeEnds(stdinPipe.readFd, stdinPipe.writeFd);
      subscriber.error(new ChildStartFailure(e, spec.argv[0]!));
      return;
    }
    const stdin = pipeSocket(stdinPipe.writeFd, 'write');
    const output = pipeSocket(outputPipe.readFd, 'read');
    const exit$ = new AsyncSubject<ExitStatus>();
    let child: ChildProcess | undefined;
    const teardown = (): void => {
      stdin.destroy();
      output.destroy();
      if (child !== undefined) terminate(child, spec.killGraceMs);
    };
    subscriber.next({ stdin, output, exit$ });
    if (subscriber.closed) {
      closePipeEnds(stdinPipe.readFd, outputPipe.writeFd);
      return teardown;
    }
    try {
      child = spawnChild(spec, stdinPipe, outputPipe);
    } catch (e) {
      subscriber.error(new ChildStartFailure(e, spec.argv[0]!));
      return teardown;
    } finally {
      // The child has its own copies now (or never will).
      closePipeEnds(stdinPipe.readFd, outputPipe.writeFd);
    }
    logKillErrors(child, spec.domain);
    if (child.pid === undefined) {
      // ENOENT, EACCES and the like arrive as an 'error' event on the next tick.
      const failure = fromEvent(child, 'error')
        .pipe(take(1))
        .subscribe((e) => subscriber.error(new ChildStartFailure(e, spec.argv[0]!)));
      return () => {
        failure.unsubscribe();
        teardown();
      };
    }
    watchExit(child, spec.domain);
    exitOf(child).subscribe(exit$);
    return teardown;
  });
}
