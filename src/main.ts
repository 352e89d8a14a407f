#!/usr/bin/env node
// Entry point of the `qrelay` command.
import { DEFAULT_CONFIG, USAGE, parseCommandLine } from './cli.js';
import { runDaemon, type WorkerRole } from './daemon.js';
import { WORKER_FDS_VARIABLE, primaryChannelNotifier, runPrimary } from './primary.js';
import { timeoutsFromEnvironment } from './timeouts.js';

/** Set when the primary of `--workers` started this process as one of its workers. */
function workerRole(): WorkerRole | undefined {
  const fds = process.env[WORKER_FDS_VARIABLE];
  if (fds === undefined) return undefined;
  delete process.env[WORKER_FDS_VARIABLE];
  // a worker whose primary is gone drains and exits
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  return { listenFds: JSON.parse(fds) as number[][], notifier: primaryChannelNotifier() };
}

const commandLine = parseCommandLine(process.argv.slice(2));
switch (commandLine.kind) {
  case 'help':
    process.stdout.write(
      `${USAGE}\n\nRuns the QMQP relay with the Lua configuration at PATH (default ${DEFAULT_CONFIG}).\n` +
        `--workers N runs N worker processes accepting on the same sockets (auto: one per core; default 1).\n`,
    );
    break;
  case 'usage-error':
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = 1;
    break;
  case 'run': {
    const timeouts = timeoutsFromEnvironment(process.env);
    const worker = workerRole();
    // exit as soon as the daemon is done: children, timers of abandoned
    // work and the like must not keep the process alive
    process.exit(
      worker === undefined && commandLine.workers > 1
        ? await runPrimary({ configPath: commandLine.configPath, timeouts, workers: commandLine.workers })
        : await runDaemon({ configPath: commandLine.configPath, timeouts, worker }),
    );
  }
}
