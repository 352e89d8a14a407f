// Failover timing: `connect(first, second)` where the first server is down,
// with qrelay's backoff and without it (QRELAY_TEST_BACKOFF_FIRST_MS=0:
// every mail tries the dead server first, as qmail-qmqpc does).  Two ways
// of being down: a black hole (connection attempts time out, like a crashed
// host; the default 20 s connect timeout) and refused (the host answers,
// nothing listens).  CLIENTS clients send one mail after another from the
// moment the first server is down (t = 0) until the window ends.
// Prints a table, then one JSON line per variant:
//   npm run bench:failover
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { connect, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { netstring, qmqpRequest } from '../test/helpers/qmqp.js';
import { ROOT, start, timeLimit, waitReady } from './lib/processes.js';
import { median, round } from './lib/stats.js';
import { formatTable } from './lib/table.js';

const CLIENTS = 4;
const WINDOW_S = { 'black hole': 30, refused: 10 } as const;
const REQUEST = qmqpRequest(`Subject: failover\r\n\r\n${'x'.repeat(2000)}\r\n`, 'bench@example.org', ['rcpt@example.org']);
/** Mails the daemon discards before t = 0, so that its code is warm. */
const WARMUP_MAILS = 500;
const WARMUP_REQUEST = qmqpRequest('warm-up', 'warm@example.org', ['rcpt@example.org']);
type Down = keyof typeof WINDOW_S;

/** One mail: connect, write, read to EOF; no time limit (a mail may wait out a connect timeout). */
function exchange(path: string, request: Buffer = REQUEST): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => resolve(Buffer.concat(chunks)));
    socket.write(request);
  });
}

/** The first server: a black hole (test/fixtures/black-hole.py) or a closed port. */
function isSocket(path: string): boolean {
  try {
    return statSync(path).isSocket();
  } catch {
    return false;
  }
}

async function downServer(how: Down): Promise<{ address: string; stop(): void }> {
  if (how === 'refused') {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return { address: `127.0.0.1:${port}`, stop: () => {} };
  }
  // its stdin stays open while it should live (it ends at EOF), so not through start()
  const hole = spawn(join(ROOT, 'test', 'fixtures', 'black-hole.py'), { stdio: ['pipe', 'pipe', 'inherit'] });
  const kill = (): void => void hole.kill('SIGKILL');
  process.on('exit', kill);
  const [port] = await new Promise<string[]>((resolve) => createInterface({ input: hole.stdout }).once('line', (line) => resolve([line])));
  return {
    address: `127.0.0.1:${port}`,
    stop: () => {
      process.off('exit', kill);
      kill();
    },
  };
}

interface Result {
  readonly down: Down;
  readonly backoff: boolean;
  /** Seconds from t = 0 to the first mail answered through the second server. */
  readonly firstDeliveryS: number;
  /** Mails answered within the window. */
  readonly delivered: number;
  /** Median round trip of the mails started after the first delivery (ms). */
  readonly medianAfterMs: number;
}

async function measure(down: Down, backoff: boolean): Promise<Result> {
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-failover-'));
  const first = await downServer(down);
  const expected = netstring('Ksecond');
  const second = createServer((socket) => {
    socket.on('error', () => {});
    let length = 0;
    socket.on('data', (chunk: Buffer) => {
      length += chunk.length;
      if (length >= REQUEST.length) socket.end(expected);
    });
  });
  await new Promise<void>((resolve) => second.listen(join(dir, 'second.sock'), resolve));
  const path = join(dir, 'qrelay.sock');
  writeFileSync(
    join(dir, 'config.lua'),
    `qmqp_listen(${JSON.stringify(path)}, function(m)
  if m.sender == 'warm@example.org' then return m:discard() end
  return m:connect(${JSON.stringify(first.address)}, ${JSON.stringify(join(dir, 'second.sock'))})
end)\n`,
  );
  const env = { ...process.env, QRELAY_LOG: 'quiet', ...(backoff ? {} : { QRELAY_TEST_BACKOFF_FIRST_MS: '0' }) };
  const daemon = start(process.execPath, [join(ROOT, 'dist', 'main.js'), '--config', join(dir, 'config.lua')], { env });
  await waitReady(daemon, () => isSocket(path), 'qrelay');
  try {
    for (let i = 0; i < WARMUP_MAILS; i++) await exchange(path, WARMUP_REQUEST);
    const windowMs = WINDOW_S[down] * 1000;
    const t0 = performance.now();
    let firstDelivery: number | undefined;
    let delivered = 0;
    const after: number[] = [];
    const client = async (): Promise<void> => {
      while (performance.now() - t0 < windowMs) {
        const started = performance.now();
        const answer = await exchange(path);
        const ended = performance.now();
        if (!answer.equals(expected)) throw new Error(`unexpected answer ${JSON.stringify(answer.toString('latin1'))}`);
        if (ended - t0 <= windowMs) delivered++;
        firstDelivery ??= ended - t0;
        if (started - t0 > firstDelivery) after.push(ended - started);
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, client));
    return {
      down,
      backoff,
      firstDeliveryS: (firstDelivery ?? NaN) / 1000,
      delivered,
      medianAfterMs: after.length === 0 ? NaN : median(after),
    };
  } finally {
    await daemon.stop();
    first.stop();
    second.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

timeLimit(10 * 60_000, 'bench/failover');
const results: Result[] = [];
for (const down of ['refused', 'black hole'] as const) {
  for (const backoff of [true, false]) results.push(await measure(down, backoff));
}
process.stdout.write(
  `failover: connect(first, second), first server down at t = 0, ${CLIENTS} clients, default timeouts\n` +
    `${formatTable(
      ['first server', 'backoff', 'window s', 'first mail via second s', 'mails in window', 'median ms after first'],
      results.map((r) => [
        r.down,
        r.backoff ? 'yes' : 'no',
        String(WINDOW_S[r.down]),
        r.firstDeliveryS.toFixed(3),
        String(r.delivered),
        Number.isNaN(r.medianAfterMs) ? '-' : r.medianAfterMs.toFixed(2),
      ]),
    )}\n`,
);
for (const r of results) {
  const line = {
    bench: 'failover',
    first_server: r.down,
    backoff: r.backoff,
    clients: CLIENTS,
    window_s: WINDOW_S[r.down],
    first_delivery_s: round(r.firstDeliveryS, 3),
    mails_in_window: r.delivered,
    median_after_first_ms: Number.isNaN(r.medianAfterMs) ? null : round(r.medianAfterMs, 2),
  };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}
