// Action exec_raw end to end (docs/actions.md, and the original's shipped
// integration test): the real
// daemon runs real children; responses are checked byte for byte.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { removeDir, startDaemon, tempDir } from './helpers/daemon.js';
import { casesConfig, expectNoChildren, FIXTURES, onlyEnvironment, sendCase, suiteDaemon } from './helpers/exec-children.js';
import { qmqpRequest, send } from './helpers/qmqp.js';

const RECEIVED = `Received: from PID=${process.pid} UID=${process.geteuid!()} with QMQP\r\n`;

/** Lua string literal (the shell snippets below are plain ASCII). */
const lua = (s: string): string => JSON.stringify(s);
const shell = (script: string): string => `return m:exec_raw('/bin/sh', '-c', ${lua(script)})`;

/** The mapping of docs/actions.md as the letter of the answer. */
const EXIT_CODES: ReadonlyArray<[number, 'K' | 'D' | 'Z']> = [
  [0, 'K'],
  [64, 'D'],
  [72, 'D'],
  [77, 'D'],
  [78, 'D'],
  [75, 'Z'],
  [67, 'Z'],
  [1, 'Z'],
];

const cases: Record<string, string> = {
  // docs/actions.md test vectors
  'v-exit0': shell('cat >/dev/null; exit 0'),
  'v-queued': shell('cat >/dev/null; echo queued'),
  'v-exit77': shell('cat >/dev/null; exit 77'),
  'v-nope77': shell('cat >/dev/null; echo nope; exit 77'),
  'v-exit75': shell('cat >/dev/null; exit 75'),
  'v-busy75': shell('cat >/dev/null; echo busy >&2; exit 75'),
  'v-kill9': shell('cat >/dev/null; kill -9 $$'),
  'v-300a': shell("cat >/dev/null; head -c 300 /dev/zero | tr '\\0' a"),
  // process creation (docs/actions.md)
  argv: "return m:exec_raw('bin/sh', '-c', 'cat /proc/$$/cmdline', 'name', '', 'two words')",
  env: "return m:exec_raw('/usr/bin/env', {env = {A = '1', B = 'two words', EMPTY = ''}})",
  'no-env': "return m:exec_raw('/usr/bin/env')",
  signals: "return m:exec_raw('/bin/grep', '-E', '^Sig(Blk|Ign)', '/proc/self/status')",
  missing: "return m:exec_raw('/nonexistent/program')",
  'not-executable': `return m:exec_raw(${lua(join(FIXTURES, 'not-executable.sh'))})`,
  'no-path-search': "return m:exec_raw('true')",
  // output handling (docs/actions.md)
  merged: shell('cat >/dev/null; echo one; echo two >&2; echo three'),
  nul: shell("cat >/dev/null; printf 'a\\000b'"),
  'late-output': shell('cat >/dev/null; (/bin/sleep 0.5; echo late) & exit 0'),
  checksum: "return m:exec_raw('/usr/bin/sha256sum')",
  'ignores-stdin': "return m:exec_raw('/bin/true')",
  'write-error': shell('exec 0<&-; exec /bin/sleep 5'),
};
for (const [code] of EXIT_CODES) {
  cases[`exit${code}`] = shell(`cat >/dev/null; exit ${code}`);
  cases[`out${code}`] = shell(`cat >/dev/null; echo out; exit ${code}`);
}

describe('exec_raw', () => {
  const suite = suiteDaemon({ config: casesConfig(cases) });

  it('answers the test vectors of docs/actions.md byte for byte', async () => {
    const vectors: Array<[string, string]> = [
      ['v-exit0', '1:K,'],
      ['v-queued', '8:Kqueued\n,'],
      ['v-exit77', '22:Dinternal server error,'],
      ['v-nope77', '6:Dnope\n,'],
      ['v-exit75', '22:Zinternal server error,'],
      ['v-busy75', '6:Zbusy\n,'],
      ['v-kill9', '22:Zinternal server error,'],
      ['v-300a', `256:K${'a'.repeat(255)},`],
    ];
    for (const [name, expected] of vectors) assert.equal(await sendCase(suite(), name), expected, name);
  });

  it('maps every exit status with and without output', async () => {
    for (const [code, letter] of EXIT_CODES) {
      const base = letter === 'K' ? 'K' : `${letter}internal server error`;
      assert.equal(await sendCase(suite(), `exit${code}`), `${base.length}:${base},`, `exit ${code}`);
      assert.equal(await sendCase(suite(), `out${code}`), `5:${letter}out\n,`, `exit ${code} with output`);
    }
    for (const code of EXIT_CODES.map(([c]) => c).filter((c) => c !== 0)) {
      await suite().waitForStderr(new RegExp(`\\] Exit status ${code}\\n`));
    }
  });

  it('logs a death by signal in both domains', async () => {
    assert.equal(await sendCase(suite(), 'v-kill9'), '22:Zinternal server error,');
    await suite().waitForStderr(/\[exec_raw\] died from signal 9\n/);
    await suite().waitForStderr(/\[pid=\d+ uid=\d+ mail=[0-9a-f]{8}\] Exit status 9\n/);
  });

  it('passes argv exactly, argv[0] as given, a relative program resolved against /', async () => {
    const argv = 'bin/sh\0-c\0cat /proc/$$/cmdline\0name\0\0two words\0';
    assert.equal(await sendCase(suite(), 'argv'), `${argv.length + 1}:K${argv},`);
  });

  it('gives exactly the configured environment, and an empty one without env', async () => {
    const answer = await sendCase(suite(), 'env');
    const lines = answer.slice(answer.indexOf(':K') + 2, -1).split('\n').filter((l) => l !== '');
    assert.deepEqual(lines.sort(), ['A=1', 'B=two words', 'EMPTY=']);
    assert.equal(await sendCase(suite(), 'no-env'), '1:K,');
  });

  it('starts the child with an empty signal mask and default dispositions', async () => {
    const answer = await sendCase(suite(), 'signals');
    const blocked = /SigBlk:\t([0-9a-f]+)/.exec(answer);
    const ignored = /SigIgn:\t([0-9a-f]+)/.exec(answer);
    assert.ok(blocked && ignored, answer);
    assert.equal(BigInt(`0x${blocked[1]}`), 0n);
    // bit n-1 stands for signal n; glibc's own real-time signals do not count
    assert.equal(BigInt(`0x${ignored[1]}`) & 0x7fffffffn, 0n, 'no signal 1–31 ignored');
  });

  it('answers Zinternal server error when the program cannot be executed', async () => {
    assert.equal(await sendCase(suite(), 'missing'), '22:Zinternal server error,');
    await suite().waitForStderr(/\] Failed to execute process: \S+: No such file or directory\n/);
    assert.equal(await sendCase(suite(), 'not-executable'), '22:Zinternal server error,');
    await suite().waitForStderr(/\] Failed to execute process: \S+: Permission denied\n/);
  });

  it('does not search PATH for a program without a slash', async () => {
    assert.equal(await sendCase(suite(), 'no-path-search'), '22:Zinternal server error,');
  });

  it('shares one pipe between stdout and stderr, in the order written', async () => {
    assert.equal(await sendCase(suite(), 'merged'), '15:Kone\ntwo\nthree\n,');
  });

  it('keeps NUL bytes of the output verbatim', async () => {
    assert.equal(await sendCase(suite(), 'nul'), '4:Ka\0b,');
  });

  it('waits for EOF on the output as well as for the exit', async () => {
    const started = Date.now();
    assert.equal(await sendCase(suite(), 'late-output'), '6:Klate\n,');
    assert.ok(Date.now() - started >= 450, 'the answer waited for the grandchild');
  });

  it('delivers a 10 MiB message intact', async () => {
    const message = randomBytes(10 * 1024 * 1024);
    const expected = createHash('sha256').update(RECEIVED).update(message).digest('hex');
    assert.equal(await sendCase(suite(), 'checksum', message), `69:K${expected}  -\n,`);
  });

  it('has the message in the pipe before a child that never reads stdin can exit', async () => {
    for (let i = 0; i < 30; i++) assert.equal(await sendCase(suite(), 'ignores-stdin'), '1:K,', `mail ${i}`);
  });

  it('answers Zwrite error at once when the child closes its stdin', async () => {
    const started = Date.now();
    assert.equal(await sendCase(suite(), 'write-error', randomBytes(1024 * 1024)), '12:Zwrite error,');
    assert.ok(Date.now() - started < 4_000, 'not after the child ended by itself');
  });
});

describe('exec_raw: the original shipped integration test', () => {
  it('records argv and the message block with inserted headers', async () => {
    const dir = tempDir();
    const record = join(dir, 'record');
    const config = `function handler(m)
  m:insert_header('X-Header1', 'Foo')
  m:insert_header('X-Header2', 'Bar')
  return m:exec_raw(os.getenv('QRELAY_RECORD_PROGRAM'), os.getenv('QRELAY_RECORD_FILE'), m.sender, unpack(m.recipients))
end
qmqp_listen(os.getenv('QRELAY_SOCKET_PATH'), handler)
`;
    const daemon = await startDaemon({
      config,
      dir,
      env: onlyEnvironment({
        QRELAY_SOCKET_PATH: join(dir, 'qrelay.sock'),
        QRELAY_RECORD_PROGRAM: join(FIXTURES, 'record.py'),
        QRELAY_RECORD_FILE: record,
        TEST_DIR: dir,
      }),
    });
    try {
      const request = qmqpRequest('Subject: Hello!\n\nhello world\n', 'nobody@localhost', ['foo@example.com', 'bar@example.com']);
      assert.equal(await send(join(dir, 'qrelay.sock'), request), '1:K,');
      assert.equal(
        readFileSync(record, 'latin1'),
        'nobody@localhost\nfoo@example.com\nbar@example.com\n\n' +
          `X-Header2: Bar\r\nX-Header1: Foo\r\n${RECEIVED}` +
          'Subject: Hello!\n\nhello world\n',
      );
      await expectNoChildren(daemon);
    } finally {
      await daemon.stop();
      removeDir(dir);
    }
  });
});
