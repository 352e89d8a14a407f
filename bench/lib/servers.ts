// The relays a bench compares, each started as its own process with its own
// folder: qrelay (dist/main.js, production settings), the plain-Node floor
// (bench/floor-relay.mjs), the C++ original (QRELAY_BENCH_REF) and a bare
// `node` for idle memory.  qrelay and the original run the same config.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, start, waitReady, type Owned } from './processes.js';

const MAIN = join(ROOT, 'dist', 'main.js');
const FLOOR = join(ROOT, 'bench', 'floor-relay.mjs');

/** What a listener does with each mail. */
export type Policy = 'relay' | 'discard' | 'exec_raw' | 'creds';

/** Each policy as the handler body of one listener (the same Lua for qrelay and the original). */
const HANDLERS: Record<Policy, (sink: string) => string> = {
  relay: (sink) => `m:insert_header('X-Bench', 'relay') return m:connect(${JSON.stringify(sink)})`,
  discard: () => 'return m:discard()',
  exec_raw: () => "return m:exec_raw('/bin/true')",
  creds: () => "local c = m.cgroup if m.uid == nil or c == nil or c.path == '' then return m:reject() end return m:discard()",
};

export const POLICY_TEXT: Record<Policy, string> = {
  relay: 'insert_header + connect(C sink)',
  discard: 'discard',
  exec_raw: "exec_raw('/bin/true')",
  creds: 'reads m.uid, m.cgroup.path; discard',
};

export interface Relay {
  /** As printed in the table. */
  readonly name: string;
  readonly pid: number;
  /** The socket of each policy this relay serves. */
  readonly sockets: Partial<Record<Policy, string>>;
  readonly process: Owned;
  stop(): Promise<void>;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

async function started(name: string, p: Owned, sockets: Partial<Record<Policy, string>>): Promise<Relay> {
  await waitReady(p, () => Object.values(sockets).every(isSocket), name);
  return {
    name,
    pid: p.pid,
    sockets,
    process: p,
    stop: async () => {
      const code = await p.stop();
      if (code !== 0) process.stderr.write(`${name} exited with ${code}; its log: ${p.stderr().slice(-1500)}\n`);
    },
  };
}

/** Folder DIR/NAME with the config for every policy; returns the config path and the sockets. */
function writeConfig(dir: string, sink: string): { config: string; sockets: Record<Policy, string> } {
  mkdirSync(dir, { recursive: true });
  const sockets = {} as Record<Policy, string>;
  // every load-generator client runs as one uid: qrelay's per-uid cap
  // (default 64) would answer most of the 1 000-client case with Z, so it
  // is off here (a global the original ignores)
  let lua = 'max_connections_per_uid = 0\n';
  for (const policy of Object.keys(HANDLERS) as Policy[]) {
    sockets[policy] = join(dir, `${policy}.sock`);
    lua += `qmqp_listen(${JSON.stringify(sockets[policy])}, function(m) ${HANDLERS[policy](sink)} end)\n`;
  }
  const config = join(dir, 'config.lua');
  writeFileSync(config, lua);
  return { config, sockets };
}

/**
 * What the first line of `main` gives (`#!/usr/bin/env -S [NAME=VALUE …] node OPTIONS`), as the
 * `qrelay` command runs: the environment it sets (as `env` does) and the options for `node`.
 */
function shebang(main: string): { env: Record<string, string>; options: string[] } {
  const first = readFileSync(main, 'latin1').split('\n', 1)[0]!;
  const words = first.replace(/^#!/, '').trim().split(/\s+/);
  const node = words.findIndex((w) => w === 'node' || w.endsWith('/node'));
  if (node < 0) return { env: {}, options: [] };
  const env: Record<string, string> = {};
  for (const w of words.slice(0, node)) {
    const eq = w.indexOf('=');
    if (eq > 0) env[w.slice(0, eq)] = w.slice(eq + 1);
  }
  return { env, options: words.slice(node + 1) };
}

/** Whether this build of qrelay knows `--workers` (its --help says so). */
export function qrelaySupportsWorkers(main: string = MAIN): boolean {
  try {
    return execFileSync(process.execPath, [main, '--help'], { encoding: 'utf8' }).includes('--workers');
  } catch {
    return false;
  }
}

export interface QrelayOptions {
  readonly name: string;
  readonly dir: string;
  readonly sink: string;
  readonly workers: number;
  /** QRELAY_LOG for the daemon; undefined: not set (the default). */
  readonly log?: string;
  /** Write a V8 CPU profile of the daemon into this folder when it exits (`node --cpu-prof`). */
  readonly cpuProfileDir?: string;
  /** Options for `node` before the script (an experiment with V8 flags, say). */
  readonly nodeOptions?: readonly string[];
  /** Another build's `dist/main.js` (an A/B comparison); default: this tree's. */
  readonly main?: string;
}

/**
 * qrelay as production runs it (systemd/qrelay.service: `qrelay --config`, with the node options of its first line,
 * log to a file much as to journald), NODE_ENV=production.  `--workers N` is
 * passed when the daemon supports it; without that support a case with more
 * than one worker is skipped (undefined).
 */
export async function startQrelay(o: QrelayOptions): Promise<Relay | undefined> {
  const main = o.main ?? MAIN;
  const supported = qrelaySupportsWorkers(main);
  if (o.workers !== 1 && !supported) return undefined;
  const { config, sockets } = writeConfig(o.dir, o.sink);
  const first = shebang(main);
  const env: NodeJS.ProcessEnv = { ...process.env, ...first.env, NODE_ENV: 'production' };
  delete env.QRELAY_LOG;
  delete env.NODE_OPTIONS;
  if (o.log !== undefined) env.QRELAY_LOG = o.log;
  const profile = o.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfileDir}`];
  const args = [...first.options, ...(o.nodeOptions ?? []), ...profile, main, '--config', config, ...(supported ? ['--workers', String(o.workers)] : [])];
  const p = start(process.execPath, args, { env, logFile: join(o.dir, 'qrelay.log') });
  try {
    return await started(o.name, p, sockets);
  } catch (e) {
    if (o.workers !== 1) {
      process.stderr.write(`${o.name}: skipped, the daemon did not start with --workers ${o.workers}: ${(e as Error).message.slice(0, 300)}\n`);
      return undefined;
    }
    throw e;
  }
}

/** The C++ original with the same config. */
export async function startOriginal(binary: string, dir: string, sink: string): Promise<Relay> {
  const { config, sockets } = writeConfig(dir, sink);
  const p = start(binary, ['--config', config], { logFile: join(dir, 'cxx.log') });
  return started('c++ original', p, sockets);
}

/** The plain-Node floor: relay only. */
export async function startFloor(dir: string, sink: string): Promise<Relay> {
  mkdirSync(dir, { recursive: true });
  const socket = join(dir, 'relay.sock');
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_ENV: 'production' };
  delete env.NODE_OPTIONS;
  const p = start(process.execPath, [FLOOR, socket, sink], { env, logFile: join(dir, 'floor.log') });
  return started('plain-Node floor', p, { relay: socket });
}

/** A bare `node` doing nothing, for idle memory. */
export function startBareNode(): Owned {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.NODE_OPTIONS;
  return start(process.execPath, ['-e', 'setInterval(() => {}, 1e9)'], { env });
}
