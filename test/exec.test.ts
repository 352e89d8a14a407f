// Action exec end to end (docs/actions.md, docs/protocol.md): the real daemon
// speaks QMQP with real children over their stdin/stdout.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { casesConfig, FIXTURES, sendCase, suiteDaemon } from './helpers/exec-children.js';
import { netstring } from './helpers/qmqp.js';

const RECEIVED = `Received: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\n`;
const MESSAGE = 'Subject: test\r\n\r\nbody\r\n';

/** What sendCase(daemon, name) makes qrelay write to an exec child. */
function relayedRequest(name: string): Buffer {
  return netstring(Buffer.concat([netstring(RECEIVED + MESSAGE), netstring('sender@example.org'), netstring(`${name}@example.com`)]));
}

const lua = (s: string): string => JSON.stringify(s);
const shell = (script: string, ...args: string[]): string => `return m:exec('/bin/sh', '-c', ${[script, ...args].map(lua).join(', ')})`;

/** The mapping of docs/actions.md for a child that answered `3:Kok,` and then exited. */
const EXIT_CODES: ReadonlyArray<[number, string]> = [
  [0, '3:Kok,'],
  [64, '22:Dinternal server error,'],
  [72, '22:Dinternal server error,'],
  [77, '22:Dinternal server error,'],
  [78, '22:Dinternal server error,'],
  [75, '22:Zinternal server error,'],
  [67, '22:Zinternal server error,'],
  [1, '22:Zinternal server error,'],
];

// A shell snippet writing its argv and initial environment (as the kernel
// passed them) next to the file given as $0, then answering.
const PROC_INFO = '/bin/cat /proc/$$/cmdline > "$0.argv"; /bin/cat /proc/$$/environ > "$0.env"; printf 3:Kok,';

const cases: Record<string, string> = {
  'proc-info': `return m:exec('bin/sh', '-c', ${lua(PROC_INFO)}, dir .. '/info', '', 'two words', {env = {A = '1', B = 'two words', EMPTY = ''}})`,
  'proc-info-no-env': `return m:exec('/bin/sh', '-c', ${lua(PROC_INFO)}, dir .. '/bare')`,
  signals: `return m:exec('/bin/sh', '-c', ${lua('/bin/grep -E "^Sig(Blk|Ign)" /proc/self/status > "$0"; printf 3:Kok,')}, dir .. '/signals')`,
  record: `return m:exec(fixtures .. '/qmqp-record.py', dir .. '/request')`,
  'stdin-open': `return m:exec('/bin/sh', '-c', '/bin/cat > "$0"; printf 3:Kok,', dir .. '/cat', {timeout = 10})`,
  'kill-9': shell('kill -9 $$'),
  'echo-newline': shell("echo '3:Kok,'"),
  'long-newline': shell(`printf '40:K${'x'.repeat(39)},\\n'`),
  'no-answer': shell('exit 0'),
  'silent-exit75': shell('exit 75'),
  'closes-stdout': shell('exec 1>&-; exec /bin/sleep 30'),
  partial: shell("printf '5:Ko'"),
  malformed: shell("printf '3:Xok,'"),
  empty: shell("printf '0:,'"),
  oversize: shell("printf '300:'"),
  'to-stderr': shell("echo child-wrote-to-stderr >&2; printf '3:Kok,'"),
  missing: "return m:exec('/nonexistent/program')",
  'not-executable': `return m:exec(${lua(join(FIXTURES, 'not-executable.sh'))})`,
  'no-path-search': "return m:exec('true')",
};
for (const [code] of EXIT_CODES) cases[`exit${code}`] = shell(`printf '3:Kok,'; exit ${code}`);

describe('exec', () => {
  const suite = suiteDaemon({ config: casesConfig(cases) });
  const file = (name: string): string => join(suite().dir, name);


  it('passes argv exactly (argv[0] as given) and exactly the configured environment', async () => {
    assert.equal(await sendCase(suite(), 'proc-info'), '3:Kok,');
    const argv = readFileSync(file('info.argv'), 'latin1').split('\0');
    assert.deepEqual(argv, ['bin/sh', '-c', PROC_INFO, file('info'), '', 'two words', '']);
    const env = readFileSync(file('info.env'), 'latin1').split('\0').filter((e) => e !== '');
    assert.deepEqual(env.sort(), ['A=1', 'B=two words', 'EMPTY=']);
  });

  it('gives an empty environment without the env option', async () => {
    assert.equal(await sendCase(suite(), 'proc-info-no-env'), '3:Kok,');
    assert.equal(readFileSync(file('bare.env'), 'latin1'), '');
  });

  it('starts the child with an empty signal mask and default dispositions', async () => {
    assert.equal(await sendCase(suite(), 'signals'), '3:Kok,');
    const status = readFileSync(file('signals'), 'latin1');
    assert.match(status, /^SigBlk:\t0+\n/m);
    const ignored = /SigIgn:\t([0-9a-f]+)/.exec(status);
    assert.ok(ignored, status);
    assert.equal(BigInt(`0x${ignored[1]}`) & 0x7fffffffn, 0n, 'no signal 1–31 ignored');
  });

  it('writes the complete relayed request to stdin (docs/protocol.md)', async () => {
    assert.equal(await sendCase(suite(), 'record'), '9:Krecorded,');
    assert.deepEqual(readFileSync(file('request')), relayedRequest('record'));
  });

  it('closes stdin after the request: a child running cat sees EOF', async () => {
    // cat ends (and the child answers) only because stdin gets closed
    assert.equal(await sendCase(suite(), 'stdin-open'), '3:Kok,');
    assert.deepEqual(readFileSync(file('cat')), relayedRequest('stdin-open'));
  });

  it('forwards the answer only after exit status 0 and maps every other status', async () => {
    for (const [code, expected] of EXIT_CODES) assert.equal(await sendCase(suite(), `exit${code}`), expected, `exit ${code}`);
    await suite().waitForStderr(/\] Exit status 75\n/);
  });

  it('answers Zinternal server error for a death by signal', async () => {
    assert.equal(await sendCase(suite(), 'kill-9'), '22:Zinternal server error,');
    await suite().waitForStderr(/\[exec\] died from signal 9\n/);
    await suite().waitForStderr(/\[pid=\d+ uid=\d+ mail=[0-9a-f]{8}\] Exit status 9\n/);
  });

  it('treats a short answer followed by a newline as garbage', async () => {
    assert.equal(await sendCase(suite(), 'echo-newline'), '13:Zrelay failed,');
    await suite().waitForStderr(/\] Garbage received after netstring\n/);
  });

  it('never reads the bytes after a longer answer', async () => {
    assert.equal(await sendCase(suite(), 'long-newline'), `40:K${'x'.repeat(39)},`);
  });

  it('answers Zrelay failed as soon as stdout ends without an answer', async () => {
    for (const name of ['no-answer', 'partial']) {
      const started = Date.now();
      assert.equal(await sendCase(suite(), name), '13:Zrelay failed,', name);
      assert.ok(Date.now() - started < 3_000, `${name}: not after the 5 s / 60 s timers`);
    }
    await suite().waitForStderr(/\] Peer closed the socket prematurely\n/);
  });

  it('lets a non-zero exit decide when there was no answer', async () => {
    assert.equal(await sendCase(suite(), 'silent-exit75'), '22:Zinternal server error,');
  });

  it('gives up on a child that closed stdout but does not exit', async () => {
    const started = Date.now();
    assert.equal(await sendCase(suite(), 'closes-stdout'), '13:Zrelay failed,');
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 4_500 && elapsed < 15_000, `after about 5 s (${elapsed} ms)`);
  });

  it('checks the answer', async () => {
    assert.equal(await sendCase(suite(), 'malformed'), '25:Zmalformed relay response,');
    assert.equal(await sendCase(suite(), 'empty'), '25:Zmalformed relay response,');
    assert.equal(await sendCase(suite(), 'oversize'), '13:Zrelay failed,');
    await suite().waitForStderr(/\] Netstring is too large: 300\n/);
  });

  it("leaves the child's stderr on the daemon's stderr", async () => {
    assert.equal(await sendCase(suite(), 'to-stderr'), '3:Kok,');
    await suite().waitForStderr(/^child-wrote-to-stderr$/m);
  });

  it('answers Zinternal server error when the program cannot be executed', async () => {
    assert.equal(await sendCase(suite(), 'missing'), '22:Zinternal server error,');
    await suite().waitForStderr(/\] Failed to execute process: \S+: No such file or directory\n/);
    assert.equal(await sendCase(suite(), 'not-executable'), '22:Zinternal server error,');
    await suite().waitForStderr(/\] Failed to execute process: \S+: Permission denied\n/);
    assert.equal(await sendCase(suite(), 'no-path-search'), '22:Zinternal server error,');
  });
});
