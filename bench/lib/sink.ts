// Starting and stopping the sink (bench/sink.ts) as a child process.
import { fileURLToPath } from 'node:url';
import { startNode } from './child.js';

const PROGRAM = fileURLToPath(new URL('../sink.ts', import.meta.url));

export interface Sink {
  readonly path: string;
  readonly pid: number;
  /** Stops the sink; resolves with the number of complete mails it accepted. */
  stop(): Promise<number>;
}

/** Runs a sink listening on `path`; resolves once it accepts connections. */
export async function startSink(path: string): Promise<Sink> {
  const child = startNode(['--import', 'tsx', PROGRAM, path]);
  await child.waitReady(() => child.stdout().startsWith('ready\n'), 'sink');
  return {
    path,
    pid: child.pid,
    stop: async () => {
      const code = await child.stop();
      const last = child.stdout().trim().split('\n').pop() ?? '';
      if (code !== 0 || !last.startsWith('{')) throw new Error(`sink exited with ${code}: ${child.stdout()}${child.stderr()}`);
      return (JSON.parse(last) as { mails: number }).mails;
    },
  };
}
