// Stage: the request body → a parsed QMQP request or a named failure.
import { map, type OperatorFunction } from 'rxjs';
import { parseQmqpRequest, type QmqpParseResult } from '../protocol/qmqp.js';
import { Responses, type ResponseText } from '../protocol/responses.js';

export function parseQmqp(): OperatorFunction<Buffer, QmqpParseResult> {
  return map(parseQmqpRequest);
}

/** The immediate D answer for a request that did not parse. */
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
