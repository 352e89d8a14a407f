// `qrelay send` (also installed as `qrelay-send`): submits one message from
// stdin over QMQP and prints the server's answer, exiting with the
// sysexits code of its class (docs/command-line.md): 0 for K, 75
// (EX_TEMPFAIL) for Z and for failures to deliver, 77 (EX_NOPERM) for D,
// 64 (EX_USAGE) for a bad command line.
import { firstValueFrom, map, of, timeout } from '../rx.js';
import type { ActionResult } from '../actions/action-result.js';
import { relayToServer } from '../actions/connect.js';
import { tryParseArgs } from '../cli.js';
import { encodeQmqpRequest } from '../protocol/qmqp.js';
import { DefaultPort, resolveAddress, type SocketAddress } from '../protocol/socket-address.js';
import { DEFAULT_TIMEOUTS } from '../timeouts.js';

export const SEND_USAGE =
  'Usage: qrelay send [--socket PATH | --host HOST [--port PORT]] [--timeout SECONDS] -f SENDER RECIPIENT... < MESSAGE';
const DEFAULT_SOCKET = '/run/cm4all/qrelay/socket';
const DEFAULT_TIMEOUT_S = 60;

export const SendExit = { accepted: 0, usage: 64, tempFail: 75, refused: 77 } as const;

const OPTIONS = {
  socket: { type: 'string' },
  host: { type: 'string' },
  port: { type: 'string' },
  timeout: { type: 'string' },
  from: { type: 'string', short: 'f' },
  help: { type: 'boolean', short: 'h' },
} as const;

type Parsed = { readonly address: SocketAddress; readonly describe: string; readonly timeoutMs: number; readonly sender: string; readonly recipients: string[] };

function parse(args: readonly string[]): Parsed | { readonly error: string } | 'help' {
  const parsed = tryParseArgs({ args: [...args], options: OPTIONS, allowPositionals: true, strict: true });
  if ('error' in parsed) return parsed;
  const { values, positionals } = parsed;
  if (values.help === true) return 'help';
  if (values.from === undefined) return { error: "Option '-f SENDER' is required" };
  if (positionals.length === 0) return { error: 'At least one RECIPIENT is required' };
  if (values.socket !== undefined && values.host !== undefined) return { error: "Options '--socket' and '--host' exclude each other" };
  if (values.port !== undefined && values.host === undefined) return { error: "Option '--port' needs '--host'" };
  const seconds = values.timeout === undefined ? DEFAULT_TIMEOUT_S : Number(values.timeout);
  if (!(seconds > 0 && seconds <= 86_400)) return { error: `Option '--timeout ${values.timeout}' must be a number of seconds (0 < S <= 86400)` };
  let address: SocketAddress;
  let describe: string;
  if (values.host !== undefined) {
    const port = values.port === undefined ? DefaultPort.qmqp : Number(values.port);
    if (!Number.isInteger(port) || port < 1 || port > 65535) return { error: `Option '--port ${values.port}' must be a port number (1 to 65535)` };
    const host = values.host.includes(':') && !values.host.startsWith('[') ? `[${values.host}]` : values.host;
    describe = `${host}:${port}`;
    try {
      address = resolveAddress(describe, DefaultPort.qmqp, 'stream');
    } catch (e) {
      return { error: `Option '--host ${values.host}': ${(e as Error).message}` };
    }
  } else {
    describe = values.socket ?? DEFAULT_SOCKET;
    const abstract = describe.startsWith('@');
    address = { family: 'unix', name: Buffer.from(abstract ? describe.slice(1) : describe, 'latin1'), abstract };
  }
  return { address, describe, timeoutMs: seconds * 1000, sender: values.from, recipients: positionals };
}

async function readStdin(): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return chunks;
}

function exitFor(response: string): number {
  if (response.startsWith('K')) return SendExit.accepted;
  if (response.startsWith('D')) return SendExit.refused;
  return SendExit.tempFail;
}

/** Runs `qrelay send ARGS`; resolves with the exit status. */
export async function runSend(args: readonly string[]): Promise<number> {
  const parsed = parse(args);
  if (parsed === 'help') {
    process.stdout.write(`${SEND_USAGE}\n`);
    return 0;
  }
  if ('error' in parsed) {
    process.stderr.write(`qrelay send: ${parsed.error}\n${SEND_USAGE}\n`);
    return SendExit.usage;
  }
  const message = await readStdin();
  const request = encodeQmqpRequest(message, parsed.sender, parsed.recipients);
  const timedOut = { response: '', log: [`no answer within ${parsed.timeoutMs / 1000} s`] };
  const t = parsed.timeoutMs;
  const timeouts = { ...DEFAULT_TIMEOUTS, connectMs: t, sendStallMs: t, firstResponseByteMs: t, betweenResponseChunksMs: t };
  const result = await firstValueFrom(
    relayToServer(parsed.address, request, timeouts).pipe(
      map((attempt): ActionResult => attempt.result),
      timeout({ first: parsed.timeoutMs, with: () => of(timedOut) }),
    ),
  );
  if (result.log !== undefined && result.log.length > 0) {
    for (const line of result.log) process.stderr.write(`qrelay send: ${parsed.describe}: ${line}\n`);
    return SendExit.tempFail;
  }
  process.stdout.write(`${result.response}\n`);
  return exitFor(result.response);
}
