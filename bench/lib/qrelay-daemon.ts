// Starting the real daemon (dist/main.js) with a one-handler config for a bench.
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, startNode } from './child.js';

const MAIN = join(ROOT, 'dist', 'main.js');

export interface Qrelay {
  /** The daemon's QMQP socket. */
  readonly path: string;
  readonly pid: number;
  /** Stops the daemon (SIGTERM); throws if it did not exit cleanly. */
  stop(): Promise<void>;
}

export interface QrelayOptions {
  /** Folder for the config (DIR/NAME.lua) and the socket (DIR/NAME.sock). */
  readonly dir: string;
  readonly name: string;
  /** Lua statements of the handler body, with the mail as `m`. */
  readonly handler: string;
  /** Write a V8 CPU profile of the daemon into this folder when it exits. */
  readonly cpuProfileDir?: string | undefined;
}

function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

export async function startQrelay(options: QrelayOptions): Promise<Qrelay> {
  const path = join(options.dir, `${options.name}.sock`);
  const config = join(options.dir, `${options.name}.lua`);
  writeFileSync(config, `qmqp_listen(${JSON.stringify(path)}, function(m)\n  ${options.handler}\nend)\n`);
  const profile = options.cpuProfileDir === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${options.cpuProfileDir}`];
  const child = startNode([...profile, MAIN, '--config', config]);
  await child.waitReady(() => isSocket(path), `qrelay (${options.name})`);
  return {
    path,
    pid: child.pid,
    stop: async () => {
      const code = await child.stop();
      if (code !== 0) throw new Error(`qrelay (${options.name}) exited with ${code}: ${child.stderr()}`);
    },
  };
}
