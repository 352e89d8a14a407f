// The cost of one policy call through the Lua engine, without sockets:
// open a mail, run the handler to its decision, close it (the hot path of
// issue 9 inside src/lua).  Prints wall and CPU µs per call for three
// handlers; compare figures of one run (e.g. two checkouts run in turn).
//   npm run build && node --import tsx bench/engine-call.ts [calls]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LuaEngine } from '../src/lua/engine.js';
import type { MailInput } from '../src/policy.js';

const CONFIG = `
qmqp_listen('/nonexistent/a', function(m) return m:discard() end)
qmqp_listen('/nonexistent/b', function(m)
  m:insert_header('X-Checked', 'yes')
  m.account = 'acct' .. tostring(m.uid)
  return m:connect('127.0.0.1:628', { timeout = 30 })
end)
qmqp_listen('/nonexistent/c', function(m)
  return m:exec('/bin/cat', '-u', { env = { A = '1' } })
end)
`;

/** Rounds per case; the figures are the median and the fastest round. */
const ROUNDS = 10;

const CASES = [
  ['discard', 1],
  ['header+account+connect', 2],
  ['exec with env', 3],
] as const;

async function main(): Promise<void> {
  const calls = Number(process.argv[2] ?? 20000);
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-engine-bench-'));
  try {
    const config = join(dir, 'config.lua');
    writeFileSync(config, CONFIG);
    const engine = await LuaEngine.load(config, { listen() {} });
    engine.finishStartup();
    const mail: MailInput = {
      sender: 'a@example.org',
      recipients: ['b@example.org', 'c@example.org'],
      credentials: { pid: 1234, uid: 1000, gid: 1000 },
      peerPidfd: () => undefined,
    };
    const once = (listener: number): void => {
      const session = engine.open(listener, mail);
      let kind = '';
      session.decision$.subscribe((d) => (kind = d.kind)).unsubscribe();
      session.close();
      if (kind !== 'action') throw new Error(`handler ${listener} did not decide synchronously: ${kind}`);
    };
    for (const [name, listener] of CASES) {
      for (let i = 0; i < 2000; i++) once(listener);
      const wall: number[] = [];
      const cpu: number[] = [];
      const perRound = calls / ROUNDS;
      for (let r = 0; r < ROUNDS; r++) {
        const cpuStart = process.cpuUsage();
        const start = process.hrtime.bigint();
        for (let i = 0; i < perRound; i++) once(listener);
        wall.push(Number(process.hrtime.bigint() - start) / 1000 / perRound);
        const used = process.cpuUsage(cpuStart);
        cpu.push((used.user + used.system) / perRound);
      }
      wall.sort((a, b) => a - b);
      cpu.sort((a, b) => a - b);
      const mid = Math.floor(ROUNDS / 2);
      console.log(`${name.padEnd(24)} wall median ${wall[mid]!.toFixed(2)} min ${wall[0]!.toFixed(2)} µs/call; cpu median ${cpu[mid]!.toFixed(2)} min ${cpu[0]!.toFixed(2)} µs/call`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
