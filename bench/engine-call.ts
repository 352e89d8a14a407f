// The cost of one policy call through the Lua engine, without sockets:
// open a mail, run the handler to its decision, close it (the hot path of
// issue 9 inside src/lua).  Prints wall and CPU µs per call for each
// handler.  With `--base DIR` the engine of another tree's build (e.g.
// /work/main) runs in the same process, its rounds alternating with ours,
// and each line gets the ratio ours/base.
//   npm run build && node --import tsx bench/engine-call.ts [--base DIR] [--only NAME-PREFIX] [calls]
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { MailInput, Policy } from '../src/policy.js';

type EngineModule = typeof import('../src/lua/engine.js');
type NativeModule = typeof import('../src/native/linux.js');

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
qmqp_listen('/nonexistent/d', function(m) m:insert_header('X-Bench', 'relay') return m:connect('/run/qrelay-bench/sink.sock') end)
qmqp_listen('/nonexistent/e', function(m)
  local c = m.cgroup if m.uid == nil or c == nil or c.path == '' then return m:reject() end return m:discard()
end)
`;

/** Rounds per case; the figures are the median and the fastest round. */
const ROUNDS = 10;

/** name, listener (1-based order above), whether the mail has a peer pidfd (SO_PEERPIDFD, as in the daemon). */
const CASES = [
  ['discard', 1],
  ['relay (bench policy)', 4],
  ['header+account+connect', 2],
  ['creds (uid, cgroup.path)', 5],
  ['exec with env', 3],
] as const;

interface Subject {
  readonly label: string;
  readonly once: (listener: number) => void;
}

/** One tree's build: its engine on the config, and a connected Unix socket to ask SO_PEERPIDFD on. */
async function subject(label: string, dir: string, config: string, socketName: string): Promise<Subject> {
  const { LuaEngine } = (await import(pathToFileURL(join(dir, 'dist/lua/engine.js')).href)) as EngineModule;
  const native = (await import(pathToFileURL(join(dir, 'dist/native/linux.js')).href)) as NativeModule;
  const engine: Policy & { finishStartup(): unknown } = await LuaEngine.load(config, { listen() {} });
  engine.finishStartup();
  const name = Buffer.from(`${socketName}-${label}`);
  const listener = native.listenUnix(name, true, 4, 'bench socket');
  native.connectSocket({ family: 'unix', name, abstract: true }, 'stream', true);
  let server: number | undefined;
  while (server === undefined) server = native.acceptConnection(listener);
  const serverFd = server;
  const once = (listenerIndex: number): void => {
    let pidfd: number | undefined | null = null;
    const mail: MailInput = {
      sender: 'a@example.org',
      recipients: ['b@example.org', 'c@example.org'],
      credentials: { pid: process.pid, uid: 1000, gid: 1000 },
      peerPidfd: () => (pidfd === null ? (pidfd = native.peerPidfd(serverFd)) : pidfd),
    };
    const session = engine.open(listenerIndex, mail);
    let kind = '';
    session.decision$.subscribe((d) => (kind = d.kind === 'action' ? d.action.kind : d.log)).unsubscribe();
    session.close();
    if (typeof pidfd === 'number') native.closeFd(pidfd);
    if (kind !== 'discard' && kind !== 'connect' && kind !== 'exec') throw new Error(`${label}: handler ${listenerIndex} did not decide synchronously: ${kind}`);
  };
  return { label, once };
}

function median(values: number[]): number {
  return [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const baseAt = args.indexOf('--base');
  const baseDir = baseAt >= 0 ? resolve(args.splice(baseAt, 2)[1]!) : undefined;
  const onlyAt = args.indexOf('--only');
  const only = onlyAt >= 0 ? args.splice(onlyAt, 2)[1]! : undefined;
  const calls = Number(args[0] ?? 20000);
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-engine-bench-'));
  try {
    const config = join(dir, 'config.lua');
    writeFileSync(config, CONFIG);
    const socketName = `qrelay-engine-bench-${process.pid}`;
    const subjects = [await subject('ours', resolve(import.meta.dirname, '..'), config, socketName)];
    if (baseDir !== undefined) subjects.push(await subject('base', baseDir, config, socketName));
    for (const [name, listener] of CASES) {
      if (only !== undefined && !name.startsWith(only)) continue;
      const wall = subjects.map((): number[] => []);
      const cpu = subjects.map((): number[] => []);
      for (const s of subjects) for (let i = 0; i < 2000; i++) s.once(listener);
      const perRound = calls / ROUNDS;
      for (let r = 0; r < ROUNDS; r++) {
        subjects.forEach((s, k) => {
          const cpuStart = process.cpuUsage();
          const start = process.hrtime.bigint();
          for (let i = 0; i < perRound; i++) s.once(listener);
          wall[k]!.push(Number(process.hrtime.bigint() - start) / 1000 / perRound);
          const used = process.cpuUsage(cpuStart);
          cpu[k]!.push((used.user + used.system) / perRound);
        });
      }
      subjects.forEach((s, k) => {
        const ratio = k === 1 ? '' : subjects.length > 1 ? `  ours/base cpu ${(median(cpu[0]!) / median(cpu[1]!)).toFixed(2)}` : '';
        console.log(
          `${name.padEnd(26)} ${s.label} wall median ${median(wall[k]!).toFixed(2)} min ${Math.min(...wall[k]!).toFixed(2)} µs/call; cpu median ${median(cpu[k]!).toFixed(2)} min ${Math.min(...cpu[k]!).toFixed(2)} µs/call${ratio}`,
        );
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
