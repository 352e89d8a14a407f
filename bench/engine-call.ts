// The cost of one policy call through the Lua engine, without sockets:
// open a mail, run the handler to its decision, close it (the hot path of
// issue 9 inside src/lua).  Prints µs per call for three handlers; compare
// figures of one run (e.g. before/after a change, built in turn).
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
      const rounds: number[] = [];
      for (let r = 0; r < 5; r++) {
        const start = process.hrtime.bigint();
        for (let i = 0; i < calls / 5; i++) once(listener);
        rounds.push(Number(process.hrtime.bigint() - start) / 1000 / (calls / 5));
      }
      rounds.sort((a, b) => a - b);
      console.log(`${name.padEnd(24)} median ${rounds[2]!.toFixed(2)} µs/call  (min ${rounds[0]!.toFixed(2)}, max ${rounds[4]!.toFixed(2)})`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
