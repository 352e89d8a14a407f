// `--workers N` (N > 1): the primary binds the config's listeners once and
// starts N workers that each accept on those same descriptors (inherited,
// so the kernel spreads connections; no round trip through the primary),
// each with a Lua state of its own loaded from the same config.  The
// primary handles no mail: it relays SIGHUP (every worker runs reload()),
// drains every worker on SIGTERM, replaces a worker that dies, and alone
// talks to systemd (READY, RELOADING, STOPPING, WATCHDOG).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeFd } from './native/linux.js';
import { logPlain } from './log.js';
import { ConfigError } from './errors.js';
import { LuaEngine } from './lua/engine.js';
import { bindListeningFd } from './streams/listener.js';
import { pendingSignals, signalNumber } from './streams/signals.js';
import { createNotifier, reloadingMessage, takeListenFds, watchdogPings$, type Notifier } from './streams/systemd.js';
import type { Timeouts } from './timeouts.js';
import { METRICS_WITH_WORKERS, type WorkerRole } from './daemon.js';

/** Environment variable telling a worker its inherited listeners (JSON: fds per qmqp_listen call). */
export const WORKER_FDS_VARIABLE = 'QRELAY_WORKER_FDS';
/** A worker's first inherited listening descriptor (0–2 are stdio, 3 the channel to the primary). */
const FIRST_LISTEN_FD = 4;

export interface PrimaryOptions {
  readonly configPath: string;
  readonly timeouts: Timeouts;
  readonly workers: number;
}

/** The listening descriptors of the config's qmqp_listen calls, bound (or taken from systemd) here. */
async function bindConfigListeners(options: PrimaryOptions): Promise<number[][]> {
  const groups: number[][] = [];
  try {
    const engine = await LuaEngine.load(
      options.configPath,
      {
        metricsListen: () => METRICS_WITH_WORKERS,
        listen: (request) => {
          if (request.target.kind !== 'systemd') {
            groups.push([bindListeningFd(request.target)]);
            return;
          }
          const fds = takeListenFds();
          if (fds.length === 0) logPlain('No systemd socket');
          groups.push(fds);
        },
      },
      { runTimeLimitMs: options.timeouts.luaRunTimeMs },
    );
    if (groups.flat().length === 0) throw new ConfigError('No QMQP listeners configured');
    engine.numberSetting('max_bytes_in_flight');
    engine.finishStartup();
    return groups;
  } catch (e) {
    groups.flat().forEach(closeFd);
    throw e;
  }
}

/** The environment of a worker: no systemd variables (the primary speaks to systemd). */
function workerEnvironment(groups: readonly number[][]): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete env[name];
  let next = FIRST_LISTEN_FD;
  env[WORKER_FDS_VARIABLE] = JSON.stringify(groups.map((group) => group.map(() => next++)));
  return env;
}

/** The notifier a worker uses: its READY/RELOADING go to the primary over the IPC channel. */
export function primaryChannelNotifier(): Notifier {
  return {
    notify: (message) => process.send?.({ notify: message }),
    close: () => {},
  };
}

/** Set when the primary of `--workers` started this process as one of its workers. */
export function workerRole(): WorkerRole | undefined {
  const fds = process.env[WORKER_FDS_VARIABLE];
  if (fds === undefined) return undefined;
  delete process.env[WORKER_FDS_VARIABLE];
  // a worker whose primary is gone drains and exits
  process.on('disconnect', () => process.kill(process.pid, 'SIGTERM'));
  return { listenFds: JSON.parse(fds) as number[][], notifier: primaryChannelNotifier() };
}

/** Runs the primary until every worker has stopped; resolves with the exit status. */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const stopSignals = pendingSignals('SIGTERM', 'SIGINT', 'SIGQUIT');
  const hangups = pendingSignals('SIGHUP');
  let groups: number[][];
  try {
    groups = await bindConfigListeners(options);
  } catch (e) {
    stopSignals.stop();
    hangups.stop();
    if (!(e instanceof ConfigError)) throw e;
    logPlain(e.message);
    return 1;
  }

  const notifier = createNotifier();
  const env = workerEnvironment(groups);
  const stdio = ['inherit', 'inherit', 'inherit', 'ipc', ...groups.flat()] as const;
  /** Workers and whether each has reported READY since it started or was last told to reload. */
  const workers = new Map<ChildProcess, { ready: boolean }>();
  let stopping = false;
  let announced = false;

  return new Promise<number>((resolve) => {
    const finish = (status: number): void => {
      stopSignals.stop();
      hangups.stop();
      watchdog.unsubscribe();
      notifier.close();
      groups.flat().forEach(closeFd);
      resolve(status);
    };
    const allReady = (): boolean => [...workers.values()].every((w) => w.ready);
    const start = (): void => {
      const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--config', options.configPath], { stdio: [...stdio], env });
      const state = { ready: false, everReady: false };
      workers.set(child, state);
      child.on('message', (message: { notify?: string }) => {
        if (message.notify !== 'READY=1') return;
        state.ready = true;
        state.everReady = true;
        if (allReady() && workers.size === options.workers && !stopping) {
          notifier.notify('READY=1');
          if (!announced) logPlain(`${options.workers} workers ready`);
          announced = true;
        }
      });
      child.on('exit', (code, signal) => {
        workers.delete(child);
        if (stopping) {
          if (workers.size === 0) finish(0);
          return;
        }
        if (!state.everReady) {
          // it could not even start: another would fail the same way
          logPlain(`worker pid=${child.pid} failed to start (status ${code ?? signal}); stopping`);
          stopping = true;
          for (const other of workers.keys()) other.kill('SIGTERM');
          if (workers.size === 0) finish(1);
          return;
        }
        logPlain(`worker pid=${child.pid} exited (${signal ?? `status ${code}`}); starting a new one`);
        start();
      });
    };
    for (let i = 0; i < options.workers; i++) start();

    const watchdog = watchdogPings$().subscribe((message) => notifier.notify(message));
    hangups.signals$.subscribe(() => {
      if (stopping) return;
      notifier.notify(reloadingMessage());
      for (const [child, state] of workers) {
        state.ready = false;
        child.kill('SIGHUP');
      }
    });
    stopSignals.signals$.subscribe((name) => {
      if (stopping) return;
      stopping = true;
      logPlain(`caught signal ${signalNumber(name)}, shutting down (pid=${process.pid})`);
      notifier.notify('STOPPING=1');
      for (const child of workers.keys()) child.kill('SIGTERM');
      if (workers.size === 0) finish(0);
    });
  });
}
