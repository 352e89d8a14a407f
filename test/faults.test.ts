// Fault injection: a downstream QMQP server and exec children that
// misbehave on command, each with the exact answer and a time bound
// (docs/actions.md: connect, exec, exec_raw).  The real long timeouts (60 s for the
// first answer byte, 10 s of send stall, 5 s between answer chunks) are
// shortened through the daemon's QRELAY_TEST_* knobs.  Cases the other
// suites already cover (refused, wrong letter, empty, oversize, garbage
// after the answer, children that crash, hang or ignore SIGTERM: see
// qmqp-e2e, exec, exec-raw, exec-lifecycle, connection-limits) are not
// repeated here.
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { netstring, qmqpRequest, send } from './helpers/qmqp.js';
import { casesConfig, expectNoChildren, suiteDaemon } from './helpers/exec-children.js';

const KNOB_MS = 600;
const ENV = {
  QRELAY_TEST_FIRST_RESPONSE_BYTE_MS: String(KNOB_MS),
  QRELAY_TEST_BETWEEN_RESPONSE_CHUNKS_MS: String(KNOB_MS),
  QRELAY_TEST_SEND_STALL_MS: String(KNOB_MS),
  QRELAY_TEST_KILL_GRACE_MS: '300',
};

type Behaviour = (socket: Socket, request: Buffer) => void;

/** What the misbehaving downstream does, by the first recipient's local part. */
const DOWNSTREAM: Record<string, Behaviour> = {
  silent: () => {},
  bytewise: (socket) => {
    const answer = Buffer.from('5:Kbyte,');
    let i = 0;
    const timer = setInterval(() => {
      if (socket.destroyed) return clearInterval(timer);
      socket.write(answer.subarray(i, i + 1));
      if (++i === answer.length) clearInterval(timer);
    }, 30);
  },
  stall: (socket) => void socket.write('7:Kst'),
  keeps: (socket) => void socket.write(netstring('Kkept open')),
  garbage: (socket) => void socket.end('hello world\r\n'),
};

/** A downstream that reads a whole request, then behaves; or one that misbehaves while reading. */
function downstream(path: string): Promise<Server> {
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    socket.on('error', () => {});
    let data = Buffer.alloc(0);
    let done = false;
    socket.on('data', (d: Buffer) => {
      if (done) return;
      data = Buffer.concat([data, d]);
      // the handler names the fault in a header at the start of the request
      const fault = /X-Fault: ([a-z]+)\r\n/.exec(data.toString('latin1', 0, 200))?.[1];
      if (fault === 'early') {
        // answers before the (large) request is read, and closes
        done = true;
        socket.write(netstring('Dtoo big'), () => socket.destroy());
        return;
      }
      if (fault === 'midclose') {
        done = true;
        socket.destroy();
        return;
      }
      const colon = data.indexOf(':');
      if (colon < 0 || data.length < colon + 2 + Number(data.subarray(0, colon).toString())) return;
      done = true;
      DOWNSTREAM[fault ?? '']?.(socket, data);
    });
  });
  return new Promise((resolve) => server.listen(path, () => resolve(server)));
}

/** Cases of the daemon's handler (casesConfig): downstream ones relay to DIR/down.sock. */
const cases: Record<string, string> = {};
for (const name of [...Object.keys(DOWNSTREAM), 'early', 'midclose']) cases[name] = `m:insert_header('X-Fault', '${name}') return m:connect(dir .. '/down.sock')`;
cases.noread = "return m:connect(dir .. '/noread.sock')";
const sh = (script: string, options = ''): string => `return m:exec('/bin/sh', '-c', ${JSON.stringify(script)}${options})`;
const shRaw = (script: string, options = ''): string => `return m:exec_raw('/bin/sh', '-c', ${JSON.stringify(script)}${options})`;
Object.assign(cases, {
  // answers, then keeps running: the answer waits for the exit (docs/actions.md, exec), so only the timeout ends it
  'exec-answer-and-run': sh("printf '3:Kok,'; exec /bin/sleep 30", ', {timeout = 1}'),
  'exec_raw-output-and-run': shRaw('/bin/cat >/dev/null; echo early; exec /bin/sleep 30', ', {timeout = 1}'),
  // 10 MiB of output
  'exec-flood': sh('/usr/bin/head -c 10485760 /dev/zero'),
  'exec-flood-digits': sh("/usr/bin/yes 1 | /usr/bin/tr -d '\\n' | /usr/bin/head -c 10485760"),
  'exec_raw-flood': shRaw('/bin/cat >/dev/null; /usr/bin/head -c 10485760 /dev/zero'),
  // reads part of the request, then exits 0 without answering
  'exec-midclose': sh('/usr/bin/head -c 10 >/dev/null; exit 0'),
});

function residentBytes(pid: number): number {
  return Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'latin1'))![1]) * 1024;
}

describe('fault injection', () => {
  const suite = suiteDaemon({ config: casesConfig(cases), env: ENV });
  let down: Server;
  let noread: Server;
  const held: Socket[] = [];
  before(async () => {
    down = await downstream(join(suite().dir, 'down.sock'));
    // accepts and never reads
    noread = createServer((s) => {
      s.pause();
      held.push(s);
    });
    await new Promise<void>((r) => noread.listen(join(suite().dir, 'noread.sock'), () => r()));
  });
  after(() => {
    for (const s of held) s.destroy();
    down.close();
    noread.close();
  });

  const big = 'x'.repeat(8 * 1024 * 1024);
  /** Sends to case `name`; returns the answer and how long it took. */
  async function timed(name: string, message = 'Subject: x\r\n\r\nbody\r\n'): Promise<{ answer: string; ms: number }> {
    const started = Date.now();
    const answer = await send(join(suite().dir, 'qrelay.sock'), qmqpRequest(message, 'a@b.c', [`${name}@example.com`]));
    return { answer, ms: Date.now() - started };
  }

  const table: [string, string, number, number, string?][] = [
    // name, answer, at least (ms), at most (ms), message
    ['silent', '13:Zrelay failed,', KNOB_MS - 100, 5_000],
    ['bytewise', '5:Kbyte,', 0, 5_000],
    ['stall', '13:Zrelay failed,', KNOB_MS - 100, 5_000],
    ['keeps', '10:Kkept open,', 0, 3_000],
    ['garbage', '13:Zrelay failed,', 0, 3_000],
    ['early', '13:Zrelay failed,', 0, 10_000, big],
    ['midclose', '13:Zrelay failed,', 0, 10_000, big],
    ['noread', '13:Zrelay failed,', KNOB_MS - 100, 10_000, big],
  ];
  for (const [name, answer, atLeast, atMost, message] of table) {
    it(`downstream ${name}: ${answer}`, async () => {
      const result = await timed(name, message);
      assert.equal(result.answer, answer);
      assert.ok(result.ms >= atLeast && result.ms <= atMost, `${result.ms} ms, expected ${atLeast}–${atMost}`);
    });
  }

  it('logs what went wrong downstream', async () => {
    await suite().waitForStderr(/\] Connect timeout\n/);
    await suite().waitForStderr(/\] Malformed netstring\n/);
  });

  for (const [name, answer] of [
    ['exec-answer-and-run', '8:Ztimeout,'],
    ['exec_raw-output-and-run', '8:Ztimeout,'],
  ] as const) {
    it(`${name}: ${answer} after the timeout option, child terminated`, async () => {
      const result = await timed(name);
      assert.equal(result.answer, answer);
      assert.ok(result.ms >= 900 && result.ms < 6_000, `${result.ms} ms`);
      await expectNoChildren(suite());
    });
  }

  it('children writing 10 MiB: exec fails at once, exec_raw keeps 255 bytes; memory stays flat', async () => {
    const pid = suite().child.pid!;
    const before = residentBytes(pid);
    for (const name of ['exec-flood', 'exec-flood-digits']) {
      const result = await timed(name);
      assert.equal(result.answer, '13:Zrelay failed,', name);
      assert.ok(result.ms < 5_000, `${name}: ${result.ms} ms`);
    }
    const raw = await timed('exec_raw-flood');
    assert.equal(raw.answer, `256:K${'\0'.repeat(255)},`);
    assert.ok(raw.ms < 20_000, `exec_raw-flood: ${raw.ms} ms`);
    const grown = residentBytes(pid) - before;
    assert.ok(grown < 64 * 1024 * 1024, `resident memory grew by ${grown >> 20} MiB`);
  });

  it('an exec child that reads part of the request and exits without answering: Zrelay failed', async () => {
    const result = await timed('exec-midclose', big);
    assert.equal(result.answer, '13:Zrelay failed,');
    assert.ok(result.ms < 10_000, `${result.ms} ms`);
  });
});
