// What the relay benchmarks talk to, all over Unix sockets: the sink directly
// (the cost floor of client + sink), qrelay discarding (qrelay without the
// downstream) and qrelay relaying to the sink.  Each with the answer it must give.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { netstring, qmqpRequest } from '../../test/helpers/qmqp.js';
import { startQrelay, type Qrelay } from './qrelay-daemon.js';
import { startSink } from './sink.js';

export const MESSAGE_BYTES = 2048;

/** A 2 KB message (header, then 78-byte lines) as one QMQP request. */
function benchMessage(): string {
  const head = 'From: bench@example.org\r\nTo: rcpt@example.org\r\nSubject: bench\r\n\r\n';
  const body = `${'x'.repeat(76)}\r\n`.repeat(Math.ceil(MESSAGE_BYTES / 78)).slice(0, MESSAGE_BYTES - head.length - 2);
  return `${head}${body}\r\n`;
}

export const REQUEST = qmqpRequest(benchMessage(), 'bench@example.org', ['rcpt@example.org']);

export type TargetName = 'direct' | 'discard' | 'relay';

export interface Target {
  readonly name: TargetName;
  readonly path: string;
  readonly expected: Buffer;
  /** The qrelay daemon behind `path`; none for `direct`. */
  readonly daemonPid: number | undefined;
}

export interface Targets {
  readonly list: readonly Target[];
  readonly sinkPid: number;
  /** Stops everything; resolves with the number of mails the sink accepted. */
  stop(): Promise<number>;
}

export interface TargetOptions {
  /** CPU-profile the relaying daemon into this folder. */
  readonly relayCpuProfileDir?: string | undefined;
}

export async function startTargets(options: TargetOptions = {}): Promise<Targets> {
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-bench-'));
  const sink = await startSink(join(dir, 'sink.sock'));
  const daemons: Qrelay[] = [];
  const stop = async (): Promise<number> => {
    // Stop all, even if one fails, then report the first failure.
    const results = await Promise.allSettled([sink.stop(), ...daemons.map((d) => d.stop())]);
    rmSync(dir, { recursive: true, force: true });
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return (results[0] as PromiseFulfilledResult<number>).value;
  };
  try {
    const discard = await startQrelay({ dir, name: 'discard', handler: 'return m:discard()' });
    daemons.push(discard);
    const relay = await startQrelay({
      dir,
      name: 'relay',
      handler: `return m:connect(${JSON.stringify(sink.path)})`,
      cpuProfileDir: options.relayCpuProfileDir,
    });
    daemons.push(relay);
    const ok = netstring('Kok');
    return {
      list: [
        { name: 'direct', path: sink.path, expected: ok, daemonPid: undefined },
        { name: 'discard', path: discard.path, expected: netstring('Kdiscarded'), daemonPid: discard.pid },
        { name: 'relay', path: relay.path, expected: ok, daemonPid: relay.pid },
      ],
      sinkPid: sink.pid,
      stop,
    };
  } catch (e) {
    await stop().catch(() => {});
    throw e;
  }
}
