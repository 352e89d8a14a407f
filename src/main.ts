#!/usr/bin/env node
// Entry point of the `qrelay` command.
import { DEFAULT_CONFIG, USAGE, parseCommandLine } from './cli.js';
import { runDaemon } from './daemon.js';
import { timeoutsFromEnvironment } from './timeouts.js';

const commandLine = parseCommandLine(process.argv.slice(2));
switch (commandLine.kind) {
  case 'help':
    process.stdout.write(`${USAGE}\n\nRuns the QMQP relay with the Lua configuration at PATH (default ${DEFAULT_CONFIG}).\n`);
    break;
  case 'usage-error':
    process.stderr.write(`${USAGE}\n`);
    process.exitCode = 1;
    break;
  case 'run':
    // exit as soon as the daemon is done: children, timers of abandoned
    // work and the like must not keep the process alive
    process.exit(
      await runDaemon({
        configPath: commandLine.configPath,
        timeouts: timeoutsFromEnvironment(process.env),
      }),
    );
}
