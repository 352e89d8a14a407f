// Every process a bench starts goes through here: it is registered, it never
// outlives the bench (SIGKILL to it and everything below it on exit, Ctrl-C,
// SIGTERM or the run's time limit) and stopping it is bounded.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { treePids } from './proc.js';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const STOP_TIMEOUT_MS = 10_000;

const owned = new Set<number>();

/** SIGKILL to `pid` and every process below it (workers, spawned programs). */
function killTree(pid: number): void {
  let pids: number[];
  try {
    pids = treePids(pid);
  } catch {
    pids = [pid];
  }
  for (const p of pids.length > 0 ? pids : [pid]) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

/** Kills every process still registered: on exit, on signals, on the time limit. */
export function killAll(): void {
  for (const pid of owned) killTree(pid);
  owned.clear();
}
process.on('exit', killAll);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    process.stderr.write(`\n${signal}: stopping every process this bench started\n`);
    killAll();
    process.exit(130);
  });
}

/** Ends the whole run after `ms`, killing everything it started. */
export function timeLimit(ms: number, what: string): void {
  setTimeout(() => {
    process.stderr.write(`${what}: not done within ${Math.round(ms / 1000)} s, stopped\n`);
    killAll();
    process.exit(1);
  }, ms).unref();
}

export interface Owned {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Exit code (null when killed by a signal); undefined while running. */
  exitCode(): number | null | undefined;
  readonly exited: Promise<number | null>;
  /** Everything written to stdout so far (when piped). */
  stdout(): string;
  /** Everything written to stderr so far (read from its log file when it has one). */
  stderr(): string;
  /** `signal` (default SIGTERM), then SIGKILL to the tree after a while; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export interface StartOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** stderr (and stdout unless `pipeStdout`) go to this file instead of a pipe: as cheap as journald, no reader on our side. */
  readonly logFile?: string;
  readonly pipeStdout?: boolean;
}

// setpriv execs the program (same pid) with a parent-death signal: even a
// bench killed with SIGKILL leaves no process of its own behind.
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export function start(file: string, args: readonly string[], options: StartOptions = {}): Owned {
  const logFd = options.logFile === undefined ? undefined : openSync(options.logFile, 'w');
  const out = options.pipeStdout === false && logFd !== undefined ? logFd : 'pipe';
  const argv = SETPRIV === undefined ? [file, ...args] : [SETPRIV, '--pdeathsig', 'SIGKILL', file, ...args];
  const child = spawn(argv[0]!, argv.slice(1), {
    cwd: ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', out, logFd ?? 'pipe'],
  });
  if (logFd !== undefined) closeSync(logFd);
  if (child.pid === undefined) throw new Error(`${file}: could not start`);
  const pid = child.pid;
  owned.add(pid);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  let code: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (c) => {
      code = c;
      resolve(c);
    });
    child.on('error', () => {
      code = null;
      resolve(null);
    });
  });
  // once it and everything below it have gone, it is no longer ours to kill
  void exited.then(() => owned.delete(pid));
  return {
    pid,
    child,
    exitCode: () => code,
    exited,
    stdout: () => stdout,
    stderr: () => (options.logFile === undefined ? stderr : readFileSync(options.logFile, 'utf8')),
    stop: async (signal: NodeJS.Signals = 'SIGTERM') => {
      if (code !== undefined) return code;
      const below = treePids(pid).filter((p) => p !== pid);
      child.kill(signal);
      const timer = setTimeout(() => killTree(pid), STOP_TIMEOUT_MS);
      const result = await exited;
      clearTimeout(timer);
      // workers that outlived their primary
      for (const p of below) {
        try {
          process.kill(p, 'SIGKILL');
        } catch {
          // gone, as it should be
        }
      }
      return result;
    },
  };
}

/** Polls `ready` every 20 ms until it holds; throws (and stops the process) when it exits first or after `ms`. */
export async function waitReady(p: Owned, ready: () => boolean, what: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ready()) {
    if (p.exitCode() !== undefined || Date.now() > deadline) {
      await p.stop('SIGKILL');
      throw new Error(`${what} did not start (exit code ${p.exitCode()}): ${p.stderr().slice(-2000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
