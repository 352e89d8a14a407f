// Counts each finished mail in the Prometheus metrics
// (docs/metrics.md) — by listener, action and answer class, and its
// duration.  Nothing at all when metrics are off (no metrics_listen).
import { luaHandlerErrors, mailDuration, mailsTotal, metricsEnabled } from '../metrics.js';
import type { MailOutcome } from './pond-log.js';

function actionLabel(decision: MailOutcome['decision']): string {
  if (decision === undefined) return '-';
  return decision === 'script-failed' ? decision : decision.kind;
}

/**
 * Counts a finished mail; nothing when metrics are off.  A plain call
 * inside serveClient's last stage, not an operator.
 */
export function countMailOutcome(outcome: MailOutcome): void {
  if (!metricsEnabled()) return;
  {
    const action = actionLabel(outcome.decision);
    const answer = outcome.result.kind === 'answered' ? outcome.result.response[0]! : 'canceled';
    mailsTotal.labels(outcome.client.listener.name, action, answer).inc();
    mailDuration.labels(action).observe(Number(process.hrtime.bigint() - outcome.client.acceptedAt) / 1e9);
    if (outcome.decision === 'script-failed') luaHandlerErrors.inc();
  }
}
