#!/usr/bin/env node
// Entry point of the `qrelay` command.
import { DEFAULT_CONFIG, USAGE, parseCommandLine } from './cli.js';
import { runDaemon } from './daemon.js';

/** Default time mails in flight get to finish after SIGTERM. */
const SHUTDOWN_GRACE_MS = 5_000;

/** A duration in ms from the environment, or `fallback`. */
function durationFromEnvironment(name: string, fallback: number): number;
function durationFromEnvironment(name: string, fallback: undefined): number | undefined;
function durationFromEnvironment(name: string, fallback: number | undefined): number | undefined {
  const text = process.env[name];
  const value = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

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
        shutdownGraceMs: durationFromEnvironment('QRELAY_SHUTDOWN_GRACE_MS', SHUTDOWN_GRACE_MS),
        luaRunTimeLimitMs: durationFromEnvironment('QRELAY_LUA_TIME_LIMIT_MS', undefined),
      }),
    );
}
