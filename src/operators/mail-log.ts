// One `key=value` line on stderr per finished mail (docs/logging.md),
// unless QRELAY_LOG=quiet.  Written after the Pond record, before the answer.
import { logMailLine, logMails, logValue } from '../log.js';
import { formatAddress, type SocketAddress } from '../protocol/socket-address.js';
import type { MailOutcome } from './pond-log.js';

/** `action=… target=…` of a decision; for `connect`, the server that answered and how many were tried. */
function actionFields(decision: MailOutcome['decision'], result: MailOutcome['result']): string {
  if (decision === undefined) return 'action=- target=-';
  if (decision === 'script-failed') return 'action=script-failed target=-';
  switch (decision.kind) {
    case 'connect': {
      const relay = result.kind === 'answered' ? result.relay : undefined;
      if (relay !== undefined) return `action=connect target=${logValue(relay.server)} tried=${relay.tried}`;
      const first = decision.servers[0];
      return `action=connect target=${first === undefined ? '-' : logValue(addressText(first))}${decision.servers.length > 1 ? `+${decision.servers.length - 1}` : ''}`;
    }
    case 'exec':
    case 'exec_raw':
      return `action=${decision.kind} target=${logValue(decision.argv[0] ?? '')}`;
    default:
      return `action=${decision.kind} target=-`;
  }
}

/** Formatted addresses: formatting an IP address is a native call, and the engine reuses address objects. */
const addressTexts = new WeakMap<SocketAddress, string>();

function addressText(address: SocketAddress): string {
  let text = addressTexts.get(address);
  if (text === undefined) {
    text = formatAddress(address);
    addressTexts.set(address, text);
  }
  return text;
}

/**
 * The line for one mail, in the connection's domain (`[pid=N uid=N mail=ID]`,
 * like the error lines about it); `nowHr` is process.hrtime.bigint() at its end.
 */
export function mailLogLine(outcome: MailOutcome, nowHr: bigint): string {
  const { client, request, mail, result } = outcome;
  const gid = client.credentials?.gid ?? '-';
  const recipients = request.recipients;
  const answer =
    result.kind === 'answered'
      ? `answer=${result.response[0]} text=${logValue(result.response.slice(1))}`
      : `answer=canceled text=${logValue(result.reason)}`;
  const ms = Number(nowHr - client.acceptedAt) / 1e6;
  return (
    `[${client.domain}] gid=${gid} account=${mail.account === undefined ? '-' : logValue(mail.account)}` +
    ` listener=${logValue(client.listener.name)}` +
    ` from=${logValue(request.sender)}${mail.sender === request.sender ? '' : ` new_from=${logValue(mail.sender)}`} nrcpt=${recipients.length} to=${logValue(recipients[0] ?? '')}` +
    ` size=${request.message.length} ${actionFields(outcome.decision, result)} ${answer} ms=${ms.toFixed(1)}\n`
  );
}

/**
 * Writes the line of a finished mail, unless QRELAY_LOG=quiet.  A plain
 * call inside serveClient's last stage, not an operator (every operator
 * costs per connection).
 */
export function logMailOutcome(outcome: MailOutcome): void {
  if (logMails) logMailLine(mailLogLine(outcome, process.hrtime.bigint()));
}
