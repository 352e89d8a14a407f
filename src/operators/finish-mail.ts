// The end of a mail: its Pond record (docs/pond.md), its log line
// (docs/logging.md) and metrics (docs/metrics.md), written before the
// answer to the client (processMail).
import { logMailOutcome } from './mail-log.js';
import { countMailOutcome } from './mail-metrics.js';
import type { MailLogger, MailOutcome } from './pond-log.js';

/**
 * Sends the Pond record of a finished mail to `mailLog` (when there is a
 * log server), writes its log line (unless QRELAY_LOG=quiet) and counts
 * it in the metrics (when they are on).  Plain calls, not operators:
 * every mail goes through them.
 */
export function recordMail(outcome: MailOutcome, mailLog: MailLogger | undefined): void {
  mailLog?.log(outcome);
  logMailOutcome(outcome);
  countMailOutcome(outcome);
}
