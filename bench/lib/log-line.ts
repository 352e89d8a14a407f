// What the per-mail log line costs, in-process: building the line for a
// relayed mail (src/operators/mail-log.ts) and writing it the way the
// daemon does (the lines of one event-loop turn joined into one write).
// The daemon-level comparison (qrelay vs QRELAY_LOG=quiet) cannot resolve a
// few microseconds against a relayed mail's few hundred, so this measures
// the line alone.
import { closeSync, openSync, writeSync } from 'node:fs';
import { mailLogLine } from '../../src/operators/mail-log.js';
import type { MailOutcome } from '../../src/operators/pond-log.js';

export interface LogLineCost {
  /** Building one line (µs). */
  readonly formatUs: number;
  /** Writing it, with `perWrite` lines per write (µs per line). */
  readonly writeUs: number;
  readonly perWrite: number;
}

/** A relayed mail as the pipeline hands it to the logger (only the fields the line reads). */
function relayedMail(): MailOutcome {
  const outcome = {
    client: {
      domain: 'pid=12345 uid=33 mail=8200019c',
      credentials: { pid: 12345, uid: 33, gid: 33 },
      listener: { name: '/run/cm4all/qrelay/socket' },
      acceptedAt: process.hrtime.bigint(),
    },
    request: { sender: 'www-data@host.example.com', recipients: ['customer@example.org', 'copy@example.org'], message: { length: 2048 } },
    mail: { sender: 'www-data@host.example.com', account: 'web123', headers: [] },
    decision: { kind: 'connect', servers: [], order: 'sequential' },
    result: { kind: 'answered', response: 'Kok queued as 4F2A1B', relay: { server: '192.0.2.21:628', tried: 1 } },
  };
  return outcome as unknown as MailOutcome;
}

/** Median of `rounds` timings of `n` calls of `f`, in µs per call. */
function timePerCall(n: number, rounds: number, f: (i: number) => void): number {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f(i);
    samples.push(Number(process.hrtime.bigint() - start) / 1000 / n);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)]!;
}

export function measureLogLine(perWrite = 8): LogLineCost {
  const outcome = relayedMail();
  const now = process.hrtime.bigint();
  let sink = 0;
  // warm-up, so the JIT has compiled the formatter
  for (let i = 0; i < 50_000; i++) sink += mailLogLine(outcome, now).length;
  const formatUs = timePerCall(100_000, 7, () => {
    sink += mailLogLine(outcome, now).length;
  });
  const line = mailLogLine(outcome, now);
  const fd = openSync('/dev/null', 'w');
  const batch: string[] = [];
  const writeUs = timePerCall(100_000, 7, () => {
    batch.push(line);
    if (batch.length === perWrite) {
      writeSync(fd, batch.join(''));
      batch.length = 0;
    }
  });
  closeSync(fd);
  if (sink === 0) throw new Error('unreachable');
  return { formatUs, writeUs, perWrite };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cost = measureLogLine();
  console.log(
    `per-mail log line: building ${cost.formatUs.toFixed(2)} µs + writing ${cost.writeUs.toFixed(2)} µs (${cost.perWrite} lines per write) = ${(cost.formatUs + cost.writeUs).toFixed(2)} µs`,
  );
}
