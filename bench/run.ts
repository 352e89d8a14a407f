// `npm run bench`: type-checks the benchmarks (tsx does not), then runs each
// one as its own process, one after another so they don't compete for the
// CPU, with its output passed through.  Exits non-zero if any failed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './lib/child.js';

const BENCHES = ['relay.ts', 'exec-raw.ts', 'latency.ts'];
const TIME_LIMIT_MS = 10 * 60_000;

/**
 * Runs `node ARGS…` and resolves with its exit code.  The child leads its own
 * process group, so a time limit, Ctrl-C or SIGTERM also ends the daemons it started.
 */
function run(args: readonly string[]): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: 'inherit', detached: true });
    const killGroup = (): void => {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    };
    const timer = setTimeout(() => {
      process.stderr.write(`${args.join(' ')}: no result within ${TIME_LIMIT_MS / 1000} s, killed\n`);
      killGroup();
    }, TIME_LIMIT_MS);
    const interrupted = (): void => {
      killGroup();
      process.exit(130);
    };
    process.once('SIGINT', interrupted);
    process.once('SIGTERM', interrupted);
    child.on('exit', (code) => {
      clearTimeout(timer);
      process.off('SIGINT', interrupted);
      process.off('SIGTERM', interrupted);
      resolve(code ?? 1); // killed by a signal: a failure
    });
  });
}

const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
if ((await run([tsc, '-p', join(ROOT, 'bench', 'tsconfig.json')])) !== 0) {
  process.stderr.write('bench: type errors\n');
  process.exit(1);
}

const failed: string[] = [];
for (const bench of BENCHES) {
  const path = join(ROOT, 'bench', bench);
  if (!existsSync(path)) continue;
  process.stdout.write(`\n== ${bench}\n`);
  const code = await run(['--import', 'tsx', path]);
  if (code !== 0) {
    process.stderr.write(`== ${bench} failed (exit code ${code})\n`);
    failed.push(bench);
  }
}
if (failed.length > 0) {
  process.stderr.write(`bench: ${failed.length} failed: ${failed.join(', ')}\n`);
  process.exit(1);
}
