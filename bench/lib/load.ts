// The C load generator and sink (bench/qmqp-load.c), built at bench time
// into bench/.build/ (git-ignored), and typed wrappers for its three modes.
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, start, waitReady, type Owned } from './processes.js';

const SOURCE = join(ROOT, 'bench', 'qmqp-load.c');
const BINARY = join(ROOT, 'bench', '.build', 'qmqp-load');

/** Compiles the generator when the binary is missing or older than its source. */
export function buildGenerator(): string {
  let fresh = false;
  try {
    fresh = statSync(BINARY).mtimeMs >= statSync(SOURCE).mtimeMs;
  } catch {
    // not built yet
  }
  if (!fresh) {
    mkdirSync(join(ROOT, 'bench', '.build'), { recursive: true });
    execFileSync('cc', ['-O2', '-pthread', '-o', BINARY, SOURCE], { stdio: 'inherit' });
  }
  return BINARY;
}

/** `key=value key=value…` as numbers where they are numbers. */
function parseLine(line: string): Record<string, string | number> {
  const fields: Record<string, string | number> = {};
  for (const pair of line.trim().split(' ')) {
    const eq = pair.indexOf('=');
    if (eq < 0) continue;
    const value = pair.slice(eq + 1);
    fields[pair.slice(0, eq)] = value !== '' && Number.isFinite(Number(value)) ? Number(value) : value;
  }
  return fields;
}

async function runToEnd(args: readonly string[], limitMs: number): Promise<Record<string, string | number>> {
  const p = start(BINARY, args);
  const timer = setTimeout(() => void p.stop('SIGKILL'), limitMs);
  const code = await p.exited;
  clearTimeout(timer);
  const line = p.stdout().trim().split('\n').pop() ?? '';
  if (code !== 0 || line === '') throw new Error(`qmqp-load ${args.join(' ')}: exit ${code}: ${p.stdout()}${p.stderr()}`);
  return parseLine(line);
}

export interface SendResult {
  readonly mails: number;
  readonly errors: number;
  readonly nonK: number;
  /** Mails whose connect found the listen backlog full (and then waited in a blocking connect). */
  readonly backlogFull: number;
  readonly seconds: number;
  readonly mailsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly p50Ms: number;
  readonly p90Ms: number;
  readonly p99Ms: number;
  readonly maxMs: number;
  /** The generator's own CPU time per answered mail, µs. */
  readonly generatorCpuPerMail: number;
  readonly firstBad: string;
}

export interface SendOptions {
  readonly socket: string;
  readonly clients: number;
  readonly seconds: number;
  readonly messageBytes: number;
  readonly recipients?: number;
  /** Each client stops after this many mails (then `seconds` is only the limit). */
  readonly mailsPerClient?: number;
}

/** A closed-loop run: `clients` concurrent clients, one connection per mail. */
export async function send(o: SendOptions): Promise<SendResult> {
  const args = ['send', o.socket, String(o.clients), String(o.seconds), String(o.messageBytes), String(o.recipients ?? 1)];
  if (o.mailsPerClient !== undefined) args.push(String(o.mailsPerClient));
  const f = await runToEnd(args, o.seconds * 1000 + 90_000);
  const n = (key: string): number => (typeof f[key] === 'number' ? (f[key] as number) : NaN);
  const mails = n('mails');
  return {
    mails,
    errors: n('errors'),
    nonK: n('non_K'),
    backlogFull: n('backlog_full'),
    seconds: n('seconds'),
    mailsPerSecond: n('mails_per_s'),
    megabytesPerSecond: n('MB_per_s'),
    p50Ms: n('p50_ms'),
    p90Ms: n('p90_ms'),
    p99Ms: n('p99_ms'),
    maxMs: n('max_ms'),
    generatorCpuPerMail: mails > 0 ? n('cpu_us') / mails : NaN,
    firstBad: String(f.first_bad ?? '-'),
  };
}

export interface HoldResult {
  readonly opened: number;
  readonly connectFailed: number;
  readonly answered: number;
  readonly droppedWithoutAnswer: number;
  readonly stillOpen: number;
  readonly firstAnswer: string;
}

/** `conns` slow clients: each announces `announce` bytes, then sends one byte every `interval` s, for `seconds`. */
export async function hold(socket: string, conns: number, seconds: number, interval: number, announce: number): Promise<HoldResult> {
  const f = await runToEnd(['hold', socket, String(conns), String(seconds), String(interval), String(announce)], seconds * 1000 + 60_000);
  return {
    opened: Number(f.opened),
    connectFailed: Number(f.connect_failed),
    answered: Number(f.answered),
    droppedWithoutAnswer: Number(f.dropped_without_answer),
    stillOpen: Number(f.still_open),
    firstAnswer: String(f.first_answer),
  };
}

export interface Sink {
  readonly path: string;
  readonly process: Owned;
  /** Stops the sink; resolves with the complete mails it accepted and the requests it refused. */
  stop(): Promise<{ mails: number; bad: number }>;
}

/** The C sink: answers `Kok` to every complete request on `path`. */
export async function startSink(path: string): Promise<Sink> {
  const p = start(BINARY, ['sink', path]);
  await waitReady(p, () => p.stdout().startsWith('ready\n'), 'sink');
  return {
    path,
    process: p,
    stop: async () => {
      await p.stop();
      const f = parseLine(p.stdout().trim().split('\n').pop() ?? '');
      return { mails: Number(f.mails), bad: Number(f.bad) };
    },
  };
}
