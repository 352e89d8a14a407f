// Bad input never crashes or wedges the daemon: arbitrary bytes get no
// answer or a D answer, and the next good mail is served.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { removeDir, startDaemon } from './helpers/daemon.js';
import { exchange, netstring, qmqpRequest, send } from './helpers/qmqp.js';

const GOOD = qmqpRequest('Subject: x\r\n\r\nbody\r\n', 'alice@example.com', ['bob@example.org']);

describe('robustness', () => {
  it('survives arbitrary bytes and malformed requests, and keeps serving', async () => {
    const daemon = await startDaemon({
      config: `max_size = 4096
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m) return m:discard() end)`,
    });
    const sock = join(daemon.dir, 'qrelay.sock');
    const allowed = new Set(['', '10:Kdiscarded,', '16:Dmalformed input,', '12:Dbad address,', '20:Dtoo many recipients,']);
    try {
      await fc.assert(
        fc.asyncProperty(
          fc.oneof(
            fc.uint8Array({ maxLength: 200 }).map((b) => Buffer.from(b)),
            fc.uint8Array({ maxLength: 200 }).map((b) => netstring(Buffer.from(b))),
            fc.tuple(fc.string(), fc.string(), fc.array(fc.string(), { maxLength: 5 })).map(([m, s, r]) => qmqpRequest(m, s, r)),
          ),
          async (bytes) => {
            const { response } = await exchange(sock, bytes, { halfClose: false });
            assert.ok(allowed.has(response.toString('latin1')), response.toString('latin1'));
          },
        ),
        { numRuns: 60, interruptAfterTimeLimit: 60_000 },
      );
      assert.equal(await send(sock, GOOD), '10:Kdiscarded,');
      assert.equal(daemon.child.exitCode, null);
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
    }
  });
});
