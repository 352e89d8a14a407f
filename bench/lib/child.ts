// Child processes a bench owns (the daemons, the sink): their output is
// collected, they never outlive the bench, and stopping them is bounded.
// (Not test/helpers/daemon.ts: that helper hooks into node:test, which
// would turn a bench process into a test run.)
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 5_000;
const POLL_MS = 20;

export interface OwnedChild {
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  /** Waits until `ready()` holds; throws (and kills the child) if it exits first or takes too long. */
  waitReady(ready: () => boolean, what: string): Promise<void>;
  /** SIGTERM, SIGKILL if it has not exited after a while; resolves with the exit code. */
  stop(): Promise<number | null>;
}

/** Runs `node ARGS…` in the repository root. */
export function startNode(args: readonly string[]): OwnedChild {
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = (): void => void child.kill('SIGKILL');
  process.on('exit', killOnExit);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      exitCode = code;
      process.off('exit', killOnExit);
      resolve(code);
    }),
  );
  const stop = async (): Promise<number | null> => {
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  return {
    pid: child.pid!,
    stdout: () => out,
    stderr: () => err,
    stop,
    waitReady: async (ready, what) => {
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!ready()) {
        if (exitCode !== undefined || Date.now() > deadline) {
          await stop();
          throw new Error(`${what} did not start (exit code ${exitCode}): ${err}`);
        }
        await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      }
    },
  };
}
