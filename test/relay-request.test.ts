// The request qrelay relays (docs/protocol.md), built from a parsed client
// request: the documented example, byte for byte, with the credentials of
// its text (pid 4242, uid 1000), which an end-to-end test cannot choose.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ByteChunks } from '../src/protocol/byte-chunks.js';
import { parseQmqpRequest, type QmqpRequest } from '../src/protocol/qmqp.js';
import { qmqpBody } from './helpers/qmqp.js';
import { headerLine, messageBlock, relayRequest } from '../src/protocol/relay-request.js';

const CREDENTIALS = { pid: 4242, uid: 1000, gid: 1000 };
const RECEIVED = 'Received: from PID=4242 UID=1000 with QMQP\r\n';

/** The client's request of docs/protocol.md (its outer netstring's payload). */
function clientRequest(): QmqpRequest {
  const parsed = parseQmqpRequest(ByteChunks.of(Buffer.from('24:Subject: test\r\n\r\nHello\r\n,17:alice@example.com,15:bob@example.org,', 'latin1')));
  assert.equal(parsed.kind, 'request');
  return parsed.request;
}

const text = (pieces: readonly Buffer[]): string => Buffer.concat(pieces).toString('latin1');

describe('relayed request', () => {
  it('is the documented example for pid 4242 uid 1000 with one inserted header', () => {
    const relayed = relayRequest(clientRequest(), { sender: 'alice@example.com', headers: [headerLine('X-Foo', 'bar')] }, CREDENTIALS);
    assert.equal(text(relayed), `124:80:X-Foo: bar\r\n${RECEIVED}Subject: test\r\n\r\nHello\r\n,17:alice@example.com,15:bob@example.org,,`);
  });

  it('puts inserted headers newest first and carries the new sender, with lengths that match', () => {
    const rewrite = { sender: 'bounce@example.net', headers: [headerLine('X-A', '1'), headerLine('X-B', '2')] };
    const relayed = relayRequest(clientRequest(), rewrite, CREDENTIALS);
    assert.equal(text(relayed), `129:84:X-B: 2\r\nX-A: 1\r\n${RECEIVED}Subject: test\r\n\r\nHello\r\n,18:bounce@example.net,15:bob@example.org,,`);
    // exec_raw gets only the message block B
    assert.equal(text(messageBlock(clientRequest(), rewrite, CREDENTIALS)), `X-B: 2\r\nX-A: 1\r\n${RECEIVED}Subject: test\r\n\r\nHello\r\n`);
  });

  it('has no Received line when the credentials are unknown', () => {
    const relayed = relayRequest(clientRequest(), { sender: 'alice@example.com', headers: [] }, undefined);
    assert.equal(text(relayed), '68:24:Subject: test\r\n\r\nHello\r\n,17:alice@example.com,15:bob@example.org,,');
  });

  it('writes the message pieces as received and what follows them as one piece', () => {
    const request = clientRequest();
    const relayed = relayRequest(request, { sender: 'alice@example.com', headers: [] }, CREDENTIALS);
    assert.equal(relayed.length, 3);
    assert.equal(relayed[1], request.message.pieces[0]);
    assert.equal(relayed[2]!.toString('latin1'), ',17:alice@example.com,15:bob@example.org,,');
  });

  it('writes a long recipient list as it was received, with lengths that match', () => {
    const recipients = Array.from({ length: 300 }, (_, i) => `recipient-${i}@example.org`);
    const body = qmqpBody('Subject: test\r\n\r\nHello\r\n', 'alice@example.com', recipients);
    const parsed = parseQmqpRequest(ByteChunks.of(body));
    assert.equal(parsed.kind, 'request');
    assert.ok(parsed.request.recipientBytes.length > 4096);
    const relayed = relayRequest(parsed.request, { sender: 'alice@example.com', headers: [] }, undefined);
    assert.ok(relayed.includes(parsed.request.recipientBytes));
    assert.equal(text(relayed), `${body.length}:${body.toString('latin1')},`);
  });
});
