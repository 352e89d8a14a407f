// Every fixed QMQP answer text of the original (docs/actions.md).  A response is
// the payload of the netstring written back: code letter, then text.

export type ResponseCode = 'K' | 'Z' | 'D';

/** A QMQP response payload, bytes as sent (one char per byte). */
export type ResponseText = string;

export const Responses = {
  malformedInput: 'Dmalformed input',
  badAddress: 'Dbad address',
  tooManyRecipients: 'Dtoo many recipients',
  scriptFailed: 'Zscript failed',
  discarded: 'Kdiscarded',
  rejected: 'Drejected',
  timeout: 'Ztimeout',
  connectFailed: 'Zconnect failed',
  relayFailed: 'Zrelay failed',
  malformedRelayResponse: 'Zmalformed relay response',
  internalErrorTemporary: 'Zinternal server error',
  internalErrorPermanent: 'Dinternal server error',
  writeError: 'Zwrite error',
  readError: 'Zread error',
} as const satisfies Record<string, ResponseText>;

/** qrelay's answer to a request longer than the listener's max_size (the original closes silently). */
export function messageTooLarge(maxSize: number): ResponseText {
  return `Dmessage too large (max_size ${maxSize})`;
}
