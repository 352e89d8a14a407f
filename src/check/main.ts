// `qrelay check`: a dry run (docs/command-line.md).  Loads the
// configuration as the daemon would — same errors, same startup rules —
// but binds, connects and starts nothing; with `--rcpt`, runs the handler
// on a mail and prints its decision.  Exit 0 OK, 1 configuration or
// script error, 2 usage.
import { userInfo } from 'node:os';
import { DEFAULT_CONFIG, tryParseArgs } from '../cli.js';
import { ConfigError, stuckAtStartup, stuckLuaCode } from '../errors.js';
import { LuaEngine, type ListenRequest } from '../lua/engine.js';
import type { PeerCredentials } from '../native/linux.js';
import type { Decision, MailInput } from '../policy.js';
import { isValidAddress } from '../protocol/address.js';
import { MAX_RECIPIENTS } from '../protocol/qmqp.js';
import { formatAddress } from '../protocol/socket-address.js';
import { listenTargetName } from '../streams/listener.js';
import { describeMetricsAddress, parseMetricsAddress, type MetricsAddress } from '../streams/metrics-server.js';
import { stuckCode$, stuckWhile } from '../streams/stuck-code.js';
import { timeoutsFromEnvironment } from '../timeouts.js';
import { describeDecision } from './describe.js';

export const CHECK_USAGE =
  'Usage: qrelay check [--config PATH] [--listener N] [--sender ADDRESS] [--rcpt ADDRESS]... [--pid N --uid N --gid N] [< MESSAGE]';

export const CheckExit = { ok: 0, failed: 1, usage: 2 } as const;

const OPTIONS = {
  config: { type: 'string' },
  listener: { type: 'string' },
  sender: { type: 'string' },
  rcpt: { type: 'string', multiple: true },
  pid: { type: 'string' },
  uid: { type: 'string' },
  gid: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

interface CheckArguments {
  readonly configPath: string;
  readonly listener: number;
  /** Present when a mail is to be run through the handler. */
  readonly mail: { readonly sender: string; readonly recipients: readonly string[]; readonly credentials: PeerCredentials } | undefined;
}

function id(name: string, text: string | undefined, fallback: number): number | string {
  if (text === undefined) return fallback;
  const value = Number(text);
  return /^\d+$/.test(text) && value <= 0xffffffff ? value : `Option '--${name} ${text}' must be a number (0 to 4294967295)`;
}

function parse(args: readonly string[]): CheckArguments | { readonly error: string } | 'help' {
  const parsed = tryParseArgs({ args: [...args], options: OPTIONS, strict: true });
  if ('error' in parsed) return parsed;
  const { values } = parsed;
  if (values.help === true) return 'help';
  if (values.config === '') return { error: "Option '--config' needs a file name" };
  const listener = id('listener', values.listener, 1);
  if (typeof listener === 'string' || listener < 1) return { error: `Option '--listener ${values.listener}' must be a listener number (1, 2, …)` };
  const recipients = values.rcpt ?? [];
  const configPath = values.config ?? DEFAULT_CONFIG;
  const mailOnly = ['sender', 'pid', 'uid', 'gid'].find((k) => values[k as keyof typeof values] !== undefined);
  if (recipients.length === 0) {
    if (mailOnly !== undefined) return { error: `Option '--${mailOnly}' needs at least one '--rcpt ADDRESS' (the mail to run the handler on)` };
    return { configPath, listener, mail: undefined };
  }
  if (recipients.length > MAX_RECIPIENTS) return { error: `At most ${MAX_RECIPIENTS} '--rcpt' options` };
  const sender = values.sender ?? `${userInfo().username}@localhost`;
  for (const [option, address] of [['sender', sender], ...recipients.map((r) => ['rcpt', r])] as const) {
    if (!isValidAddress(address)) return { error: `Option '--${option} ${address}' is not a valid address (a client would get "Dbad address")` };
  }
  const pid = id('pid', values.pid, process.pid);
  const uid = id('uid', values.uid, process.getuid?.() ?? 0);
  const gid = id('gid', values.gid, process.getgid?.() ?? 0);
  for (const v of [pid, uid, gid]) if (typeof v === 'string') return { error: v };
  return { configPath, listener, mail: { sender, recipients, credentials: { pid: pid as number, uid: uid as number, gid: gid as number } } };
}

async function readStdin(): Promise<number> {
  if (process.stdin.isTTY) return 0;
  let length = 0;
  for await (const chunk of process.stdin) length += (chunk as Buffer).length;
  return length;
}

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

/** Runs `qrelay check ARGS`; resolves with the exit status. */
export async function runCheck(args: readonly string[]): Promise<number> {
  const parsed = parse(args);
  if (parsed === 'help') {
    out(CHECK_USAGE);
    return CheckExit.ok;
  }
  if ('error' in parsed) {
    process.stderr.write(`qrelay check: ${parsed.error}\n${CHECK_USAGE}\n`);
    return CheckExit.usage;
  }
  const messageLength = parsed.mail === undefined ? 0 : await readStdin();
  const listeners: ListenRequest[] = [];
  let metrics: MetricsAddress | undefined;
  const metricsListen = (text: string): string | undefined => {
    if (metrics !== undefined) return 'metrics_listen may be called only once';
    const parsed = parseMetricsAddress(text);
    if (typeof parsed === 'string') return parsed;
    metrics = parsed;
    return undefined;
  };
  const timeouts = timeoutsFromEnvironment(process.env);
  let engine: LuaEngine;
  let logServer: string | undefined;
  try {
    const loading = LuaEngine.load(parsed.configPath, { listen: (request) => void listeners.push(request), metricsListen }, { dryRun: true, runTimeLimitMs: timeouts.luaRunTimeMs });
    // code the run-time limit cannot stop is stopped from outside, as in the daemon
    const loaded = await Promise.race([loading, stuckWhile(loading, timeouts.stuckCodeMs)]);
    if (typeof loaded === 'number') throw stuckAtStartup(parsed.configPath, loaded);
    engine = loaded;
    if (listeners.length === 0) throw new ConfigError('No QMQP listeners configured');
    // the settings the daemon reads after the load, with the same errors
    const settings = engine.finishStartup();
    logServer = settings.logServer === undefined ? undefined : formatAddress(settings.logServer);
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return CheckExit.failed;
  }
  out(`configuration OK: ${parsed.configPath}`);
  listeners.forEach((l, i) => out(`listener ${i + 1}: ${listenTargetName(l.target)} (handler ${l.handler}, max_size ${l.maxSize})`));
  if (logServer !== undefined) out(`log_server: ${logServer}`);
  if (metrics !== undefined) out(`metrics: ${describeMetricsAddress(metrics)} (GET /metrics)`);
  const startupRefusals = engine.refused.splice(0);
  if (startupRefusals.length > 0) out(`not performed at startup: ${startupRefusals.join(', ')}`);
  if (parsed.mail === undefined) return CheckExit.ok;

  const listener = listeners[parsed.listener - 1];
  if (listener === undefined) {
    process.stderr.write(`qrelay check: Option '--listener ${parsed.listener}': the configuration opens ${listeners.length} listener(s)\n`);
    return CheckExit.usage;
  }
  const { sender, recipients, credentials } = parsed.mail;
  out(
    `mail: listener ${parsed.listener}, sender <${sender}>, ${recipients.length} recipient(s) <${recipients.join('> <')}>, ` +
      `pid ${credentials.pid} uid ${credentials.uid} gid ${credentials.gid}, ${messageLength} bytes`,
  );
  const input: MailInput = { sender, recipients, credentials, peerPidfd: () => undefined };
  const session = engine.open(listener.handler, input);
  // A handler stopped from outside fails (the engine is abandoned), as in
  // the daemon.  It runs directly in a setImmediate callback, where Node 20
  // can go on after the stop (see LuaEngine.load), and its observer exists
  // before it runs (the stop unwinds the subscribe call); the event loop
  // is held open meanwhile, for the beat that tells of the stop.
  const stuck = stuckCode$(timeouts.stuckCodeMs).subscribe((heldMs) => engine.abandon(stuckLuaCode(heldMs)));
  const alive = setInterval(() => undefined, timeouts.stuckCodeMs);
  const decision = await new Promise<Decision>((resolve, reject) => {
    const observer = { next: resolve, error: reject, complete: () => reject(new Error('the handler ended without a decision')) };
    setImmediate(() => session.decision$.subscribe(observer));
  });
  clearInterval(alive);
  stuck.unsubscribe();
  session.close();
  for (const line of describeDecision(decision, sender)) out(line);
  if (engine.refused.length > 0) out(`not performed: ${engine.refused.join(', ')}`);
  if (decision.kind === 'script-failed') {
    process.stderr.write(`script error: ${decision.log}\n`);
    return CheckExit.failed;
  }
  return CheckExit.ok;
}
