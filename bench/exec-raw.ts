// Round-trip time per mail through `exec_raw('/bin/true')`, with
// `discard()` as the baseline, one mail at a time over the Unix socket.
// Prints one JSON line.  Run after `npx tsc -p .`:
//   node --import tsx bench/exec-raw.ts
import { join } from 'node:path';
import { removeDir, startDaemon } from '../test/helpers/daemon.js';
import { qmqpRequest, send } from '../test/helpers/qmqp.js';

const MAILS = 1_000;
const WARMUP = 20;

const CONFIG = `qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  if m.recipients[1] == 'discard@bench' then return m:discard() end
  return m:exec_raw('/bin/true')
end)
`;

const EXPECTED: Record<string, string> = { 'discard@bench': '10:Kdiscarded,', 'exec-raw@bench': '1:K,' };

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function measure(socket: string, recipient: string): Promise<{ median_ms: number; p90_ms: number }> {
  const request = qmqpRequest(`Subject: bench\r\n\r\n${'x'.repeat(2000)}\r\n`, 'bench@example.org', [recipient]);
  const times: number[] = [];
  for (let i = 0; i < WARMUP + MAILS; i++) {
    const started = process.hrtime.bigint();
    const response = await send(socket, request);
    const elapsed = Number(process.hrtime.bigint() - started) / 1e6;
    if (response !== EXPECTED[recipient]) throw new Error(`${recipient}: unexpected response ${JSON.stringify(response)}`);
    if (i >= WARMUP) times.push(elapsed);
  }
  times.sort((a, b) => a - b);
  const round = (ms: number): number => Math.round(ms * 1000) / 1000;
  return { median_ms: round(percentile(times, 50)), p90_ms: round(percentile(times, 90)) };
}

const daemon = await startDaemon({ config: CONFIG });
try {
  const socket = join(daemon.dir, 'qrelay.sock');
  const discard = await measure(socket, 'discard@bench');
  const execRaw = await measure(socket, 'exec-raw@bench');
  process.stdout.write(`${JSON.stringify({ mails: MAILS, message_bytes: 2000, exec_raw_true: execRaw, discard_baseline: discard })}\n`);
} finally {
  await daemon.stop();
  removeDir(daemon.dir);
}
