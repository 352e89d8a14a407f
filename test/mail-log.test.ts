// The per-mail log line, the startup and reload lines, and QRELAY_LOG
// (docs/logging.md): every kind of outcome parsed field by field, and
// QRELAY_LOG=quiet giving the original's output exactly.
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { downstreamServer, netstring, qmqpRequest, send, type DownstreamServer } from './helpers/qmqp.js';
import { removeDir, startDaemon, tempDir, waitFor, type RunningDaemon } from './helpers/daemon.js';

const CONFIG = `
local dir = os.getenv('TEST_DIR')
qmqp_listen(dir .. '/qrelay.sock', function(m)
  local user = m.recipients[1]:match('^(.-)@')
  if user == 'discard' then return m:discard() end
  if user == 'reject' then return m:reject() end
  if user == 'fail' then error('deliberate failure') end
  if user == 'refused' then return m:connect(dir .. '/nobody.sock') end
  if user == 'slow' then print('slow handler running') sleep(30) end
  m.account = 'web site'
  m.sender = 'bounce@example.net'
  return m:connect(dir .. '/down.sock')
end)
function reload() end
`;

const MESSAGE = 'Subject: x\r\n\r\nHello\r\n';

/** `[domain] key=value …` → the fields (the domain's too); values in quotes are JSON strings. */
function parseLine(line: string): Map<string, string> {
  const fields = new Map<string, string>();
  const text = line.replace(/^\[([^\]]*)\]/, '$1');
  for (const m of text.matchAll(/([a-z_]+)=("(?:[^"\\]|\\.)*"|\S*)/g)) {
    fields.set(m[1]!, m[2]!.startsWith('"') ? (JSON.parse(m[2]!) as string) : m[2]!);
  }
  return fields;
}

function mailLines(stderr: string): Map<string, string>[] {
  return stderr
    .split('\n')
    .filter((l) => / listener=/.test(l) && /^\[/.test(l))
    .map(parseLine);
}

describe('the per-mail log line (QRELAY_LOG=mail, the default)', () => {
  let daemon: RunningDaemon;
  let down: DownstreamServer;
  before(async () => {
    const dir = tempDir();
    down = await downstreamServer(join(dir, 'down.sock'), () => netstring('Kthanks'));
    daemon = await startDaemon({ config: CONFIG, dir });
  });
  after(async () => {
    await daemon.stop();
    await down.close();
    removeDir(daemon.dir);
  });

  const cases: [string, string[], Record<string, string>][] = [
    ['relayed', ['relay@example.org', 'two@example.org'], { action: 'connect', answer: 'K', text: 'thanks', account: 'web site', new_from: 'bounce@example.net', nrcpt: '2' }],
    ['discarded', ['discard@example.org'], { action: 'discard', target: '-', answer: 'K', text: 'discarded', account: '-' }],
    ['rejected', ['reject@example.org'], { action: 'reject', target: '-', answer: 'D', text: 'rejected' }],
    ['script failed', ['fail@example.org'], { action: 'script-failed', target: '-', answer: 'Z', text: 'script failed' }],
    ['connect failed', ['refused@example.org'], { action: 'connect', answer: 'Z', text: 'connect failed' }],
  ];
  for (const [name, recipients, expected] of cases) {
    it(`${name}: one line with every field`, async () => {
      const before = mailLines(daemon.stderr()).length;
      await send(join(daemon.dir, 'qrelay.sock'), qmqpRequest(MESSAGE, 'alice@example.com', recipients));
      await waitFor(() => mailLines(daemon.stderr()).length > before, 5_000, 'the mail line');
      const fields = mailLines(daemon.stderr()).at(-1)!;
      assert.match(fields.get('mail')!, /^[0-9a-f]{8}$/);
      assert.equal(fields.get('pid'), String(process.pid));
      assert.equal(fields.get('uid'), String(process.getuid!()));
      assert.equal(fields.get('gid'), String(process.getgid!()));
      assert.equal(fields.get('listener'), join(daemon.dir, 'qrelay.sock'));
      assert.equal(fields.get('from'), 'alice@example.com');
      assert.equal(fields.get('nrcpt'), String(recipients.length));
      assert.equal(fields.get('to'), recipients[0]);
      assert.equal(fields.get('size'), String(MESSAGE.length));
      assert.match(fields.get('ms')!, /^\d+\.\d$/);
      for (const [key, value] of Object.entries(expected)) assert.equal(fields.get(key), value, key);
      if (name === 'relayed') assert.equal(fields.get('target'), join(daemon.dir, 'down.sock'));
      if (name === 'connect failed') assert.equal(fields.get('target'), join(daemon.dir, 'nobody.sock'));
      if (name !== 'relayed') assert.equal(fields.has('new_from'), false);
    });
  }

  it('error lines about a mail carry its id', async () => {
    const lines = daemon.stderr().split('\n');
    for (const [pattern, action] of [
      [/deliberate failure/, 'script-failed'],
      [/Failed to connect: No such file or directory/, 'connect'],
    ] as const) {
      const error = lines.find((l) => pattern.test(l));
      assert.ok(error, daemon.stderr());
      const id = /^\[pid=\d+ uid=\d+ mail=([0-9a-f]{8})\] /.exec(error)?.[1];
      assert.ok(id, error);
      const mail = mailLines(daemon.stderr()).find((f) => f.get('mail') === id);
      assert.equal(mail?.get('action'), action);
    }
  });

  it('cancelled: the client leaves while the handler runs', async () => {
    const before = mailLines(daemon.stderr()).length;
    const socket = connect(join(daemon.dir, 'qrelay.sock'));
    socket.on('error', () => {});
    socket.write(qmqpRequest(MESSAGE, 'alice@example.com', ['slow@example.org']));
    // the handler has the mail (and sleeps), then the client goes
    await waitFor(() => daemon.stdout().includes('slow handler running'), 5_000, 'the handler');
    socket.destroy();
    await waitFor(() => mailLines(daemon.stderr()).length > before, 5_000, 'the mail line');
    const fields = mailLines(daemon.stderr()).at(-1)!;
    assert.equal(fields.get('to'), 'slow@example.org');
    assert.equal(fields.get('answer'), 'canceled');
    assert.equal(fields.get('text'), 'canceled');
    assert.equal(fields.get('action'), '-');
  });

  it('names the config file and each listener at startup, and reports reloads', async () => {
    const lines = daemon.stderr().split('\n');
    const started = parseLine(lines.find((l) => l.startsWith('qrelay '))!);
    assert.equal(started.get('config'), join(daemon.dir, 'config.lua'));
    assert.equal(started.get('listeners'), '1');
    assert.equal(started.get('pid'), String(daemon.child.pid));
    const listening = parseLine(lines.find((l) => l.startsWith('listening: '))!);
    assert.equal(listening.get('listener'), join(daemon.dir, 'qrelay.sock'));
    assert.equal(listening.get('max_size'), '16777216');
    daemon.child.kill('SIGHUP');
    await daemon.waitForStderr(/^reload: result=ok ms=\d+\.\d$/m);
  });
});

describe('QRELAY_LOG=quiet', () => {
  it("prints exactly the original's lines: errors only, no ids, no startup or mail lines", async () => {
    const dir = tempDir();
    const down = await downstreamServer(join(dir, 'down.sock'), () => netstring('Kthanks'));
    const daemon = await startDaemon({ config: CONFIG, dir, env: { QRELAY_LOG: 'quiet' } });
    try {
      const sock = join(dir, 'qrelay.sock');
      for (const to of ['relay', 'discard', 'reject', 'fail', 'refused']) {
        await send(sock, qmqpRequest(MESSAGE, 'alice@example.com', [`${to}@example.org`]));
      }
      daemon.child.kill('SIGHUP');
      await daemon.waitForStderr(/No such file or directory\n/);
      assert.equal(await daemon.stop(), 0);
      const who = `[pid=${process.pid} uid=${process.getuid!()}]`;
      assert.equal(
        daemon.stderr(),
        `${who} ${join(dir, 'config.lua')}:7: deliberate failure\n` +
          `${who} Failed to connect: No such file or directory\n` +
          `caught signal 15, shutting down (pid=${daemon.child.pid})\n`,
      );
    } finally {
      await down.close();
      removeDir(dir);
    }
  });
});
