// Property: what a child reads on stdin is exactly the documented layout, for
// any message bytes and inserted headers — the message block for exec_raw
// (docs/actions.md), the full relayed request for exec (docs/protocol.md).
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import fc from 'fast-check';
import { removeDir, startDaemon, type RunningDaemon } from '../test/helpers/daemon.js';
import { expectNoChildren, FIXTURES } from '../test/helpers/exec-children.js';
import { netstring, qmqpRequest, send } from '../test/helpers/qmqp.js';

const RECEIVED = `Received: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\n`;

// The handler inserts the headers carried hex-encoded in the recipients
// after the first one (`n<hex name>@h`, `v<hex value>@h` pairs); the first
// recipient picks the action.  Both children copy their stdin to DIR/stdin.
const CONFIG = `local dir = os.getenv('TEST_DIR')
local function unhex(s) return (s:gsub('..', function(h) return string.char(tonumber(h, 16)) end)) end
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local r = m.recipients
  for i = 2, #r - 1, 2 do
    m:insert_header(unhex(r[i]:match('^n(.*)@h$')), unhex(r[i + 1]:match('^v(.*)@h$')))
  end
  if r[1] == 'exec@mode' then return m:exec(${JSON.stringify(join(FIXTURES, 'qmqp-record.py'))}, dir .. '/stdin') end
  return m:exec_raw(${JSON.stringify(join(FIXTURES, 'write-stdin.sh'))}, dir .. '/stdin')
end)
`;

const charsIn = (from: number, to: number, except = -1): fc.Arbitrary<string> =>
  fc
    .integer({ min: from, max: to })
    .filter((c) => c !== except)
    .map((c) => String.fromCharCode(c));

/** docs/mail.md: names 0x21..0x7E without ':', values 0x20..0x7E; ≤ 31 bytes to fit a hex local part. */
const header = fc.record({
  name: fc.string({ unit: charsIn(0x21, 0x7e, 0x3a), minLength: 1, maxLength: 31 }),
  value: fc.string({ unit: charsIn(0x20, 0x7e), maxLength: 31 }),
});

/** Mostly small messages, sometimes larger than a pipe buffer. */
const message = fc.oneof(
  { arbitrary: fc.uint8Array({ maxLength: 2048 }), weight: 4 },
  { arbitrary: fc.uint8Array({ minLength: 70_000, maxLength: 150_000 }), weight: 1 },
);

const sender = fc.stringMatching(/^[a-z0-9]{1,20}@example\.org$/);

const hex = (s: string): string => Buffer.from(s, 'latin1').toString('hex');

describe('bytes on a child’s stdin', () => {
  let daemon: RunningDaemon;

  before(async () => {
    daemon = await startDaemon({ config: CONFIG });
  });
  after(async () => {
    await daemon.stop();
    removeDir(daemon.dir);
  });

  it('match the documented layout for exec and exec_raw', async () => {
    const recorded = join(daemon.dir, 'stdin');
    await fc.assert(
      fc.asyncProperty(fc.constantFrom('exec', 'exec_raw'), fc.array(header, { maxLength: 6 }), message, sender, async (action, headers, bytes, from) => {
        const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
        const recipients = [action === 'exec' ? 'exec@mode' : 'raw@mode', ...headers.flatMap((h) => [`n${hex(h.name)}@h`, `v${hex(h.value)}@h`])];
        rmSync(recorded, { force: true });
        const response = await send(join(daemon.dir, 'qrelay.sock'), qmqpRequest(body, from, recipients));
        const block = Buffer.concat([...headers.map((h) => Buffer.from(`${h.name}: ${h.value}\r\n`, 'latin1')).reverse(), Buffer.from(RECEIVED), body]);
        if (action === 'exec_raw') {
          assert.equal(response, '1:K,');
          assert.deepEqual(readFileSync(recorded), block);
        } else {
          assert.equal(response, '9:Krecorded,');
          const envelope = [netstring(block), netstring(from), ...recipients.map((r) => netstring(r))];
          assert.deepEqual(readFileSync(recorded), netstring(Buffer.concat(envelope)));
        }
      }),
      { numRuns: 25 },
    );
    await expectNoChildren(daemon);
  });
});
