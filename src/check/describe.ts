// The lines `qrelay check` prints for the policy's decision on a mail.
import type { Action, Decision } from '../policy.js';
import { formatAddress } from '../protocol/socket-address.js';

/** A word of argv as the user would type it in a shell, when it needs quoting. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

function describeAction(action: Action): string[] {
  switch (action.kind) {
    case 'discard':
      return ['action: discard (answer Kdiscarded)'];
    case 'reject':
      return ['action: reject (answer Drejected)'];
    case 'connect': {
      const lines = [`action: connect ${action.servers.map(formatAddress).join(' ')}${action.servers.length > 1 ? ` (${action.order === 'random' ? 'random rotation' : 'in this order'})` : ''}`];
      if (action.connectTimeoutMs !== undefined) lines.push(`connect timeout: ${action.connectTimeoutMs / 1000} s`);
      if (action.timeoutMs !== undefined) lines.push(`timeout: ${action.timeoutMs / 1000} s`);
      return lines;
    }
    case 'exec':
    case 'exec_raw': {
      const lines = [`action: ${action.kind} ${action.argv.map(shellWord).join(' ')}`];
      lines.push(action.env === undefined ? 'env: (empty)' : `env: ${action.env.map(shellWord).join(' ')}`);
      if (action.timeoutMs !== undefined) lines.push(`timeout: ${action.timeoutMs / 1000} s`);
      return lines;
    }
  }
}

/** The decision, one fact per line; `sender` is the envelope sender the mail came with. */
export function describeDecision(decision: Decision, sender: string): string[] {
  if (decision.kind === 'script-failed') return ['action: none (answer Zscript failed)'];
  const { mail } = decision;
  const lines = describeAction(decision.action);
  lines.push(mail.sender === sender ? `sender: <${sender}> (unchanged)` : `sender: <${sender}> rewritten to <${mail.sender}>`);
  for (const header of mail.headers) lines.push(`insert header: ${header.toString('latin1').trimEnd()}`);
  if (mail.account !== undefined) lines.push(`account: ${mail.account}`);
  return lines;
}
