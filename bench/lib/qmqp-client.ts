// The load generator: QMQP exchanges over Unix sockets, one connection per
// mail as real clients do, and a pool of N of them running concurrently.
// Kept minimal (no parsing, no per-chunk copies) so that the client costs
// as little as possible and the same for every target.
import { connect } from 'node:net';

const EXCHANGE_TIMEOUT_MS = 10_000;

/**
 * Connects to `path`, writes `request` and returns everything the server
 * sent before it closed.  The client must not half-close: qrelay takes an
 * EOF from its client as "client gone" and cancels the mail.
 */
export function exchange(path: string, request: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect(path);
    const chunks: Buffer[] = [];
    socket.setTimeout(EXCHANGE_TIMEOUT_MS, () => socket.destroy(new Error(`${path}: no answer within ${EXCHANGE_TIMEOUT_MS} ms`)));
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', reject);
    // After an error this resolve is a no-op: the promise is already rejected.
    socket.on('close', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)));
    socket.write(request);
  });
}

/** One exchange whose answer must be `expected`; resolves with its round trip in milliseconds. */
export async function timedExchange(path: string, request: Buffer, expected: Buffer): Promise<number> {
  const started = process.hrtime.bigint();
  const response = await exchange(path, request);
  const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
  if (!response.equals(expected)) {
    throw new Error(`${path}: expected ${JSON.stringify(expected.toString('latin1'))}, got ${JSON.stringify(response.toString('latin1'))}`);
  }
  return elapsed;
}

export interface PoolRun {
  readonly path: string;
  readonly request: Buffer;
  readonly expected: Buffer;
  readonly mails: number;
  readonly concurrency: number;
}

/**
 * Sends `mails` mails with `concurrency` clients, each starting its next
 * mail as soon as its previous one is answered.  Returns the wall time in
 * seconds.  The first failure stops every client and rejects.
 */
export async function runPool(run: PoolRun): Promise<number> {
  let remaining = run.mails;
  const client = async (): Promise<void> => {
    while (remaining > 0) {
      remaining--;
      try {
        await timedExchange(run.path, run.request, run.expected);
      } catch (e) {
        remaining = 0;
        throw e;
      }
    }
  };
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: run.concurrency }, client));
  return Number(process.hrtime.bigint() - started) / 1e9;
}
