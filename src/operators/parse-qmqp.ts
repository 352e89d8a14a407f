// Stage: a request that did not parse gets its immediate D answer
// (the parser itself is src/protocol/qmqp.ts, called by serve-client).
import type { QmqpParseResult } from '../protocol/qmqp.js';
import { Responses, type ResponseText } from '../protocol/responses.js';

/** The immediate D answer for a request that did not parse (a plain function: no stream of its own). */
export function parseFailureResponse(result: Exclude<QmqpParseResult, { kind: 'request' }>): ResponseText {
  switch (result.kind) {
    case 'malformed':
      return Responses.malformedInput;
    case 'bad-address':
      return Responses.badAddress;
    case 'too-many-recipients':
      return Responses.tooManyRecipients;
  }
}
