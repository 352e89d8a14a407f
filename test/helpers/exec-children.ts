// Support for the exec/exec_raw tests: a config that dispatches on the
// recipient, the daemon's child processes as seen in /proc, pid files.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, afterEach, before } from 'node:test';
import { removeDir, ROOT, startDaemon, waitFor, type RunningDaemon, type StartOptions } from './daemon.js';
import { qmqpRequest, send } from './qmqp.js';

export const FIXTURES = join(ROOT, 'test', 'fixtures');

/**
 * A config whose handler runs `cases[local part of the first recipient](m)`.
 * Each case is the Lua body of `function(m) ... end`; `dir` (the daemon's
 * temp folder) and `fixtures` are Lua locals available to every case.
 */
export function casesConfig(cases: Readonly<Record<string, string>>): string {
  const entries = Object.entries(cases)
    .map(([name, body]) => `  [${JSON.stringify(name)}] = function(m) ${body} end,`)
    .join('\n');
  return `local dir = os.getenv('TEST_DIR')
local fixtures = ${JSON.stringify(FIXTURES)}
local cases = {
${entries}
}
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local name = string.match(m.recipients[1], '^(.-)@')
  return cases[name](m)
end)
`;
}

/** Sends one mail to case `name`; returns the raw response as latin1 text. */
export function sendCase(daemon: RunningDaemon, name: string, message: Buffer | string = 'Subject: test\r\n\r\nbody\r\n'): Promise<string> {
  return send(join(daemon.dir, 'qrelay.sock'), qmqpRequest(message, 'sender@example.org', [`${name}@example.com`]));
}

/** The daemon's environment reduced to `vars` (undefined values are not passed on by spawn). */
export function onlyEnvironment(vars: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const key of Object.keys(process.env)) env[key] = undefined;
  return { ...env, ...vars };
}

export interface ProcessEntry {
  readonly pid: number;
  /** R, S, D, Z, … from /proc/PID/stat. */
  readonly state: string;
}

function statOf(pid: number): { state: string; ppid: number } | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command name may contain anything; the fields after its ')' are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, ppid: Number(fields[1]) };
  } catch {
    return undefined;
  }
}

/** Every process (alive or zombie) whose parent is `ppid`. */
export function childrenOf(ppid: number): ProcessEntry[] {
  const result: ProcessEntry[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const stat = statOf(Number(name));
    if (stat?.ppid === ppid) result.push({ pid: Number(name), state: stat.state });
  }
  return result;
}

/**
 * One daemon for the enclosing suite (stopped and removed afterwards);
 * after each test it must have no child process left.  Returns its getter.
 */
export function suiteDaemon(options: StartOptions): () => RunningDaemon {
  let daemon: RunningDaemon | undefined;
  before(async () => {
    daemon = await startDaemon(options);
  });
  after(async () => {
    if (daemon === undefined) return;
    await daemon.stop();
    removeDir(daemon.dir);
  });
  afterEach(async () => {
    if (daemon !== undefined) await expectNoChildren(daemon);
  });
  return () => {
    if (daemon === undefined) throw new Error('the suite daemon has not started');
    return daemon;
  };
}

/** Waits (bounded) until the daemon has no child process left, alive or zombie. */
export async function expectNoChildren(daemon: RunningDaemon, ms = 5_000): Promise<void> {
  const pid = daemon.child.pid!;
  await waitFor(() => childrenOf(pid).length === 0, ms, `no children of ${pid} (have ${JSON.stringify(childrenOf(pid))})`);
}

/** True while `pid` is a live (non-zombie) child of `ppid`. */
export function isLiveChild(pid: number, ppid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat.ppid === ppid && stat.state !== 'Z';
}

/** True while `pid` exists and is not a zombie (whoever its parent is now). */
export function isAlive(pid: number): boolean {
  const stat = statOf(pid);
  return stat !== undefined && stat.state !== 'Z';
}

/** Waits for a pid file written by fixtures/wait-with-pid.sh. */
export async function readPidFile(path: string, ms = 5_000): Promise<number> {
  await waitFor(() => existsSync(path), ms, `pid file ${path}`);
  return Number(readFileSync(path, 'latin1').trim());
}
