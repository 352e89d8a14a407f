// `--workers N` (N > 1): the primary binds the config's listeners once and
// starts N workers that each accept on those same descriptors (inherited,
// so the kernel spreads connections; no round trip through the primary),
// each with a Lua state of its own loaded from the same config.  The
// primary handles no mail: it relays SIGHUP (every worker runs reload()),
// drains every worker on SIGTERM, replaces a worker that dies, alone
// talks to systemd (READY, RELOADING, STOPPING, WATCHDOG), and serves the
// sum of the workers' metrics (src/worker-metrics.ts).
import type { ChildProcess } from 'node:child_process';
import { allowedCpus, closeFd, setAllowedCpus } from './native/linux.js';
import type { Registry } from 'prom-client';
import { logMails, logPlain, logValue } from './log.js';
import { ConfigError, stuckAtStartup } from './errors.js';
import { LuaEngine } from './lua/engine.js';
import { bindListeningFd } from './streams/listener.js';
import { describeMetricsAddress, metricsListenHandler, serveMetrics, type MetricsAddress, type MetricsServer } from './streams/metrics-server.js';
import { releaseAfterStartup } from './streams/release-memory.js';
import { stuckWhile } from './streams/stuck-code.js';
import { pendingSignals, signalNumber } from './streams/signals.js';
import { createNotifier, reloadingMessage, takeListenFds, watchdogPings$, type Notifier } from './streams/systemd.js';
import type { Timeouts } from './timeouts.js';
import type { WorkerRole } from './daemon.js';
import type { WorkerMetrics } from './worker-metrics.js';

/** Environment variable telling a worker its inherited listeners (JSON: fds per qmqp_listen call). */
export const WORKER_FDS_VARIABLE = 'QRELAY_WORKER_FDS';
/** A worker's first inherited listening descriptor (0–2 are stdio, 3 the channel to the primary). */
const FIRST_LISTEN_FD = 4;

export interface PrimaryOptions {
  readonly configPath: string;
  readonly timeouts: Timeouts;
  readonly workers: number;
}

interface ConfigSockets {
  /** The listening descriptors of each qmqp_listen call. */
  readonly groups: number[][];
  /** Where metrics_listen asked the metrics to be served. */
  readonly metrics: MetricsAddress | undefined;
}

/** The listening descriptors of the config's qmqp_listen calls, bound (or taken from systemd) here. */
async function bindConfigListeners(options: PrimaryOptions): Promise<ConfigSockets> {
  const groups: number[][] = [];
  const metrics = metricsListenHandler();
  try {
    const engine = await LuaEngine.load(
      options.configPath,
      {
        metricsListen: metrics.listen,
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
    engine.finishStartup();
    return { groups, metrics: metrics.address };
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

/**
 * The CPU of each worker slot: with at least as many workers as CPUs this
 * process may use, worker i runs on CPU i (mod their number), all its
 * threads; otherwise (fewer workers than CPUs, or one CPU) the scheduler
 * places them (undefined).  Measured with 2 workers on 2 cores that the
 * load generator and the sink share (2 KB × 8, interleaved rounds in one
 * run, the machine shared with other work): pinned workers answered 1.15×
 * the mails per second of unpinned ones (median of 12 rounds, 10 of them
 * faster) at 0.88× the CPU per mail; two more runs gave 1.05× and 1.10×.
 * A worker then never migrates between cores, and its caches stay warm.
 */
function workerCpus(workers: number): number[] | undefined {
  let cpus: number[];
  try {
    cpus = allowedCpus();
  } catch {
    return undefined;
  }
  return cpus.length > 1 && workers >= cpus.length ? cpus : undefined;
}

/**
 * Runs `start` with this thread restricted to `cpu` (what it forks inherits
 * that affinity), then restores `cpus`; where the system refuses (a seccomp
 * filter, say), `start` runs unpinned.
 */
function onCpu<T>(cpus: readonly number[] | undefined, cpu: number | undefined, start: () => T): T {
  if (cpus === undefined || cpu === undefined) return start();
  try {
    setAllowedCpus([cpu]);
  } catch {
    return start();
  }
  try {
    return start();
  } finally {
    setAllowedCpus(cpus);
  }
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
  return {
    listenFds: JSON.parse(fds) as number[][],
    notifier: primaryChannelNotifier(),
    // loaded only by the workers of a config with metrics_listen
    serveMetrics: async (registry: Registry): Promise<MetricsServer> => (await import('./worker-metrics.js')).answerMetricsRequests(registry),
  };
}

/**
 * Serves the sum of the workers' metrics on `address` (prom-client loaded
 * only here); a failure is a startup error, which closes the listeners.
 */
async function serveWorkerMetrics(address: MetricsAddress, workers: () => Iterable<ChildProcess>, groups: number[][]): Promise<{ source: WorkerMetrics; server: MetricsServer; address: MetricsAddress }> {
  const { WorkerMetrics } = await import('./worker-metrics.js');
  const source = new WorkerMetrics(workers);
  try {
    return { source, server: await serveMetrics(address, source), address };
  } catch (e) {
    groups.flat().forEach(closeFd);
    throw new ConfigError((e as Error).message);
  }
}

/** Runs the primary until every worker has stopped; resolves with the exit status. */
export async function runPrimary(options: PrimaryOptions): Promise<number> {
  const stopSignals = pendingSignals('SIGTERM', 'SIGINT', 'SIGQUIT');
  const hangups = pendingSignals('SIGHUP');
  let groups: number[][];
  let metrics: { readonly source: WorkerMetrics; readonly server: MetricsServer; readonly address: MetricsAddress } | undefined;
  /** Workers and whether each has reported READY since it started or was last told to reload. */
  const workers = new Map<ChildProcess, { ready: boolean }>();
  try {
    const binding = bindConfigListeners(options);
    const stuck = await Promise.race([binding, stuckWhile(binding, options.timeouts.stuckCodeMs)]);
    // the config held the process and was stopped: the startup is abandoned half way
    if (typeof stuck === 'number') throw stuckAtStartup(options.configPath, stuck);
    const sockets = stuck;
    groups = sockets.groups;
    if (sockets.metrics !== undefined) metrics = await serveWorkerMetrics(sockets.metrics, () => workers.keys(), groups);
  } catch (e) {
    stopSignals.stop();
    hangups.stop();
    if (!(e instanceof ConfigError)) throw e;
    logPlain(e.message);
    return 1;
  }

  // the config's engine is gone: what loading it left behind goes back
  releaseAfterStartup();
  // node:child_process is loaded here: a daemon without --workers never needs it
  const { spawn } = await import('node:child_process');
  const notifier = createNotifier();
  const env = workerEnvironment(groups);
  const stdio = ['inherit', 'inherit', 'inherit', 'ipc', ...groups.flat()] as const;
  const cpus = workerCpus(options.workers);
  let stopping = false;
  let announced = false;

  return new Promise<number>((resolve) => {
    const finish = (status: number): void => {
      stopSignals.stop();
      hangups.stop();
      watchdog.unsubscribe();
      notifier.close();
      metrics?.server.close();
      groups.flat().forEach(closeFd);
      resolve(status);
    };
    const allReady = (): boolean => [...workers.values()].every((w) => w.ready);
    /** Starts the worker of `slot` (a replacement takes the slot, and the CPU, of the worker it replaces). */
    const start = (slot: number): void => {
      const cpu = cpus?.[slot % cpus.length];
      const child = onCpu(cpus, cpu, () => spawn(process.execPath, [...process.execArgv, process.argv[1]!, '--config', options.configPath], { stdio: [...stdio], env }));
      const state = { ready: false, everReady: false };
      workers.set(child, state);
      child.on('message', (message: { notify?: string }) => {
        if (metrics?.source.received(message) === true || message.notify !== 'READY=1') return;
        state.ready = true;
        state.everReady = true;
        if (allReady() && workers.size === options.workers && !stopping) {
          notifier.notify('READY=1');
          if (!announced) logPlain(`${options.workers} workers ready${cpus === undefined ? '' : ` cpus=${cpus.join(',')}`}`);
          if (!announced && metrics !== undefined && logMails) logPlain(`metrics: listen=${logValue(describeMetricsAddress(metrics.address))} path=/metrics workers=${options.workers}`);
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
        metrics?.source.workerReplaced();
        start(slot);
      });
    };
    for (let slot = 0; slot < options.workers; slot++) start(slot);

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
