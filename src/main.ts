#!/usr/bin/env node
// Entry point of the `qrelay` command.
import { HELP, USAGE, packageVersion, parseCommandLine } from './cli.js';
import { timeoutsFromEnvironment } from './timeouts.js';

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
