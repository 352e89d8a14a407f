#!/usr/bin/env -S MALLOC_ARENA_MAX=1 node --max-semi-space-size=4 --no-force-async-hooks-checks
// Entry point of the `qrelay` command.
//
// The first line caps V8's young generation (where new objects are made) at
// 4 MB per semi-space; by default it grows under load to 16 MB, which an
// idle daemon never gives back.  A mail's objects are small and short-lived.
// Measured on 100 000 relayed 2 KB mails (8 clients, `npm run bench`): RSS
// afterwards idle + 24 MB instead of + 49 (1 MB cost 8-15% more CPU).  It
// also gives glibc's malloc one arena (MALLOC_ARENA_MAX=1) instead of one
// per thread that V8's helper threads leave 1-5 MB of freed memory in: an
// idle daemon 59.6-59.7 MB in four starts instead of 62.3-68.8.  The price,
// from later side-by-side bench rounds (2 KB relay, 8 clients): each setting
// about 6-8% more CPU per mail; none with 1 client or for discard.  Programs
// started by exec/exec_raw get their own environment,
// without it.  `--no-force-async-hooks-checks` lets the process go on
// after code that held it was stopped from outside
// (src/streams/stuck-code.ts): the stopped callback leaves Node's record
// of async contexts one entry deep, which Node's check would otherwise
// end the process for.  The workers of --workers inherit all three; `npm
// start` runs this file by its first line too.
import { HELP, USAGE, packageVersion, parseCommandLine } from './cli.js';
import { timeoutsFromEnvironment } from './timeouts.js';

/** Runs the command line (no top-level await: dist/ is CommonJS; a rejection still ends the process). */
async function main(): Promise<void> {
  const commandLine = parseCommandLine(process.argv.slice(2));
  switch (commandLine.kind) {
    case 'help':
      process.stdout.write(`${HELP}\n`);
      break;
    case 'version':
      process.stdout.write(`qrelay ${packageVersion()}\n`);
      break;
    case 'usage-error':
      process.stderr.write(`qrelay: ${commandLine.message}\n${USAGE}\n`);
      process.exitCode = 1;
      break;
    case 'check':
      // a loaded engine may hold timers: exit when the answer is printed
      process.exit(await (await import('./check/main.js')).runCheck(commandLine.args));
      break;
    case 'send':
      process.exitCode = await (await import('./send/main.js')).runSend(commandLine.args);
      break;
    case 'run': {
      const { configPath, workers } = commandLine.args;
      const timeouts = timeoutsFromEnvironment(process.env);
      const version = packageVersion();
      const { workerRole } = await import('./primary.js');
      const worker = workerRole();
      // exit as soon as the daemon is done: children, timers of abandoned
      // work and the like must not keep the process alive
      process.exit(
        worker === undefined && workers > 1
          ? await (await import('./primary.js')).runPrimary({ configPath, timeouts, workers })
          : await (await import('./daemon.js')).runDaemon({ configPath, timeouts, worker, version }),
      );
    }
  }
}

void main();
