// One line on stderr per event (docs/logging.md): `[DOMAIN] TEXT`, single-line.
// QRELAY_LOG chooses how much (docs/logging.md): `quiet` is the original's
// output exactly; `mail` (the default) adds a line per mail, a mail id in
// the domain of the lines about a mail, and startup and reload lines;
// `debug` adds lines for connections that carry no mail.
import { writeSync } from 'node:fs';
import type { PeerCredentials } from './native/linux.js';

export type LogLevel = 'quiet' | 'mail' | 'debug';

const LEVELS: readonly LogLevel[] = ['quiet', 'mail', 'debug'];

function levelFromEnvironment(): LogLevel {
  const text = process.env.QRELAY_LOG;
  if (text === undefined || text === '') return 'mail';
  if ((LEVELS as readonly string[]).includes(text)) return text as LogLevel;
  write(`QRELAY_LOG=${text} is not one of quiet, mail, debug; using mail\n`);
  return 'mail';
}

/** Lines written by logMailLine wait here for the end of the event-loop turn. */
let pending: string[] = [];
let flushScheduled = false;

function flush(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const text = pending.length === 1 ? pending[0]! : pending.join('');
  pending = [];
  try {
    writeSync(2, text);
  } catch {
    // stderr is gone; nothing sensible is left to do with a log line
  }
}

function write(line: string): void {
  if (pending.length > 0) flush();
  try {
    writeSync(2, line);
  } catch {
    // stderr is gone; nothing sensible is left to do with a log line
  }
}

process.on('exit', flush);

/** The level chosen by QRELAY_LOG for this process. */
export const logLevel: LogLevel = levelFromEnvironment();
/** Whether per-mail lines, mail ids, startup and reload lines are written. */
export const logMails = logLevel !== 'quiet';

function singleLine(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

/** A line in a domain (a connection or a child-process kind). */
export function logDomain(domain: string, text: string): void {
  write(`[${domain}] ${singleLine(text)}\n`);
}

/** A line without a domain, printed as it is. */
export function logPlain(text: string): void {
  write(text.endsWith('\n') ? text : text + '\n');
}

/** How long a per-mail line may wait for others to share its write(2). */
const MAIL_LINE_DELAY_MS = 10;

/**
 * A per-mail line (`line` ends with a newline).  Lines go out together
 * with one write(2) at most MAIL_LINE_DELAY_MS later (or before any other
 * line, and at exit), so that logging costs little per mail under load.
 */
export function logMailLine(line: string): void {
  pending.push(line);
  if (!flushScheduled) {
    flushScheduled = true;
    setTimeout(flush, MAIL_LINE_DELAY_MS).unref();
  }
}

/** A `key=value` value: as it is when plain, else a JSON string (quotes, escapes). */
export function logValue(text: string): string {
  return /^[!#-<>-~]+$/.test(text) ? text : JSON.stringify(text);
}

// V8 seeds Math.random from the kernel's entropy at startup; node:crypto
// (about 1 MB loaded) is not needed for an id that only differs across restarts
const idBase = Math.floor(Math.random() * 2 ** 32);
let idCount = 0;

/** `00` … `ff`. */
const HEX_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A new short mail id: 8 hex digits, unique within the process, random
 * across restarts.  Built from byte strings: `toString(16)` of a number
 * past 2^30 is a slow runtime call in V8 (about 1.5 µs a mail).
 */
export function newMailId(): string {
  const n = (idBase + idCount++) >>> 0;
  return HEX_BYTES[n >>> 24]! + HEX_BYTES[(n >>> 16) & 0xff]! + HEX_BYTES[(n >>> 8) & 0xff]! + HEX_BYTES[n & 0xff]!;
}

/**
 * The per-connection domain: `pid=N uid=N` (or `connection` without
 * credentials), followed by ` mail=ID` unless QRELAY_LOG=quiet.
 */
export function connectionDomain(credentials: PeerCredentials | undefined, mailId: string): string {
  const who = credentials === undefined ? 'connection' : `pid=${credentials.pid} uid=${credentials.uid}`;
  return logMails ? `${who} mail=${mailId}` : who;
}

/**
 * A logger for events that can come in floods (limits reached): at most one
 * line per `intervalMs`; the next line tells how many were left out.
 */
export function throttledLog(intervalMs: number): (domain: string | undefined, text: string) => void {
  let last = -Infinity;
  let skipped = 0;
  return (domain, text) => {
    const now = performance.now();
    if (now - last < intervalMs) {
      skipped++;
      return;
    }
    last = now;
    const line = skipped > 0 ? `${text} (${skipped} more since the last report)` : text;
    skipped = 0;
    if (domain === undefined) logPlain(line);
    else logDomain(domain, line);
  };
}
