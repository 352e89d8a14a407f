// Starts the real daemon (dist/main.js) as a child process for end-to-end tests.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';
import assert from 'node:assert/strict';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'dist', 'main.js');

export interface RunningDaemon {
  readonly child: ChildProcess;
  readonly dir: string;
  /** Everything the daemon wrote to stderr so far. */
  stderr(): string;
  /**
   * Waits until stderr matches: the daemon logs before it answers, but its
   * stderr pipe may reach this process after the answer on the socket.
   */
  waitForStderr(pattern: RegExp, ms?: number): Promise<void>;
  stdout(): string;
  /** Sends SIGTERM and waits for the exit; returns the exit code. */
  stop(): Promise<number | null>;
  exited: Promise<number | null>;
}

/** A fresh temporary folder, removed by the returned cleanup. */
export function tempDir(prefix = 'qrelay-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function waitFor(condition: () => boolean, ms = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Daemons still running when a test file is done are killed, so a failing
// assertion can neither hang the suite nor leave a process behind.
const running = new Set<ChildProcess>();
// only under the test runner: elsewhere (benchmarks) after() would start one
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(() => {
    for (const child of running) child.kill('SIGKILL');
  });
}
process.on('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

export interface StartOptions {
  /** Text of config.lua, written into the daemon's temp folder. */
  readonly config: string;
  /** Path (relative to dir) whose appearance means the daemon is ready. */
  readonly readyPath?: string;
  readonly env?: NodeJS.ProcessEnv;
  readonly dir?: string;
  readonly args?: readonly string[];
  /** The program to run instead of `node dist/main.js` (e.g. an installed qrelay). */
  readonly command?: readonly string[];
  /** Don't wait for readyPath (e.g. for startup failures). */
  readonly noWait?: boolean;
  /** What counts as ready (default: readyPath exists and is a socket). */
  readonly ready?: (stdout: string, stderr: string) => boolean;
  /** A command that runs the daemon (its argv appended), e.g. unshare; it must exec it (same pid). */
  readonly wrapper?: readonly string[];
}

/**
 * Writes `config` to DIR/config.lua and runs `qrelay --config DIR/config.lua`.
 * The config can use the global DIR through os.getenv('TEST_DIR').
 */
export async function startDaemon(options: StartOptions): Promise<RunningDaemon> {
  const dir = options.dir ?? tempDir();
  const configPath = join(dir, 'config.lua');
  writeFileSync(configPath, options.config);
  const argv = [...(options.wrapper ?? []), ...(options.command ?? [process.execPath, MAIN]), ...(options.args ?? ['--config', configPath])];
  // setpriv execs the daemon (same pid) with a parent-death signal: a test
  // runner that is itself killed cannot leave daemons behind
  const [file, ...args] = SETPRIV === undefined ? argv : [SETPRIV, '--pdeathsig', 'SIGKILL', ...argv];
  const child = spawn(file!, args, {
    env: { ...process.env, TEST_DIR: dir, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  let out = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  running.add(child);
  const exited = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      running.delete(child);
      resolve(code);
    }),
  );
  let done = false;
  void exited.then(() => (done = true));
  const daemon: RunningDaemon = {
    child,
    dir,
    stderr: () => err,
    waitForStderr: async (pattern, ms = 5_000) => {
      await waitFor(() => pattern.test(err), ms, `stderr matching ${pattern}`).catch(() => undefined);
      assert.match(err, pattern);
    },
    stdout: () => out,
    exited,
    stop: async () => {
      if (!done) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  if (!options.noWait) {
    const ready = join(dir, options.readyPath ?? 'qrelay.sock');
    try {
      await Promise.race([
        waitFor(options.ready ? () => options.ready!(out, err) : () => isSocket(ready), 15_000, `daemon ready (${ready})`),
        exited.then((code) => {
          throw new Error(`daemon exited with ${code} during startup: ${err}`);
        }),
      ]);
      // the socket file exists once bound; give the event loop a moment to accept
      await new Promise((r) => setTimeout(r, 50));
    } catch (e) {
      await daemon.stop();
      throw e;
    }
  }
  return daemon;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Lua string literal for a path or text. */
export function luaString(s: string): string {
  return JSON.stringify(s);
}
