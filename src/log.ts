// One line on stderr per event (docs/troubleshooting.md): `[DOMAIN] TEXT`, single-line.
import { writeSync } from 'node:fs';
import type { PeerCredentials } from './native/linux.js';

function singleLine(text: string): string {
  return text.trim().replace(/\s+/g, ' ');
}

function write(line: string): void {
  try {
    writeSync(2, line);
  } catch {
    // stderr is gone; nothing sensible is left to do with a log line
  }
}

/** A line in a domain (a connection or a child-process kind). */
export function logDomain(domain: string, text: string): void {
  write(`[${domain}] ${singleLine(text)}\n`);
}

/** A line without a domain, printed as it is. */
export function logPlain(text: string): void {
  write(text.endsWith('\n') ? text : text + '\n');
}

/** The per-connection domain: `pid=N uid=N`, or `connection` without credentials. */
export function connectionDomain(credentials: PeerCredentials | undefined): string {
  return credentials === undefined ? 'connection' : `pid=${credentials.pid} uid=${credentials.uid}`;
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
