// The daemon: load the config (which creates the listeners), then serve
// every accepted connection through the pipeline until a shutdown signal
// (docs/systemd.md).  Signals, systemd notifications and the watchdog are
// streams; shutdown is "stop accepting, let mails in flight finish within a
// grace period, then cancel them".
import { totalmem } from 'node:os';
import { performance } from 'node:perf_hooks';
import { ReplaySubject, Subject, concat, defer, finalize, firstValueFrom, ignoreElements, mergeMap, of, take, takeUntil, tap, throttle, timer } from './rx.js';
import { ServerBackoff } from './actions/server-backoff.js';
import { logMails, logPlain, logValue } from './log.js';
import { ConfigError, stuckAtStartup, stuckLuaCode } from './errors.js';
import { LuaEngine, type ListenRequest } from './lua/engine.js';
import { createMailLogger, type MailLogger } from './operators/pond-log.js';
import { withPeerCredentials } from './operators/peer-credentials.js';
import { serveClient } from './operators/serve-client.js';
import type { Registry } from 'prom-client';
import { backoffGauges, enableMetrics, gaugeFrom } from './metrics.js';
import { runningChildCount, terminateAllChildren } from './streams/child-process.js';
import { describeMetricsAddress, metricsListenHandler, serveMetrics, type MetricsAddress, type MetricsServer } from './streams/metrics-server.js';
import { accepted$, adoptListener, bindListener, closeListener, listenTargetName, removeOwnFiles, type Listener } from './streams/listener.js';
import { ReceiveBudget, defaultReceiveBudget } from './streams/receive-budget.js';
import { releaseAfterStartup } from './streams/release-memory.js';
import { stuckCode$, stuckWhile } from './streams/stuck-code.js';
import { killAfter } from './native/stop-timers.js';
import { connectionLimits, defaultMaxConnections, DEFAULT_MAX_CONNECTIONS_PER_UID, type ConnectionLimits } from './operators/connection-limits.js';
import { pendingSignals, signalNumber } from './streams/signals.js';
import { createNotifier, reloadingMessage, takeListenFds, watchdogPings$, type Notifier } from './streams/systemd.js';
import type { Timeouts } from './timeouts.js';

/** The exit status after code held the process and was stopped (EX_SOFTWARE). */
export const EXIT_STUCK = 70;

export interface DaemonOptions {
  readonly configPath: string;
  /** Every timeout of the daemon (src/timeouts.ts). */
  readonly timeouts: Timeouts;
  /** Set when this process is one of the workers of `--workers N` (src/primary.ts). */
  readonly worker?: WorkerRole;
  /** qrelay's version, for the startup line. */
  readonly version: string;
}

/** The startup lines (docs/logging.md): the process and config, then one per listener. */
function logStartup(configPath: string, listeners: readonly Listener[], version: string, metrics: MetricsAddress | undefined): void {
  logPlain(`qrelay ${version} started: pid=${process.pid} config=${logValue(configPath)} listeners=${listeners.length}`);
  for (const l of listeners) logPlain(`listening: listener=${logValue(l.name)} handler=${l.handler} max_size=${l.maxSize}`);
  if (metrics !== undefined) logPlain(`metrics: listen=${logValue(describeMetricsAddress(metrics))} path=/metrics`);
}

/** How the registry is served once startup succeeded: on the address, or (in a worker) to the primary. */
type ServeRegistry = (address: MetricsAddress, registry: Registry) => Promise<MetricsServer>;

/** `metrics_listen()` during the config load, then the server once startup succeeded. */
function metricsHost(serve: ServeRegistry): { listen: (text: string) => string | undefined; start: () => Promise<MetricsServer | undefined>; readonly address: MetricsAddress | undefined } {
  const handler = metricsListenHandler();
  return {
    listen: handler.listen,
    start: async () => {
      const address = handler.address;
      if (address === undefined) return undefined;
      const registry = await enableMetrics();
      gaugeFrom('qrelay_child_processes', 'Programs started by exec and exec_raw that are running (or not yet reaped)', runningChildCount);
      try {
        return await serve(address, registry);
      } catch (e) {
        throw new ConfigError((e as Error).message);
      }
    },
    get address() {
      return handler.address;
    },
  };
}

function logReload(result: 'none' | 'ran' | 'failed', ms: number): void {
  logPlain(result === 'none' ? 'reload: result=none (the script defines no reload function)' : `reload: result=${result === 'ran' ? 'ok' : 'failed'} ms=${ms.toFixed(1)}`);
}

export interface WorkerRole {
  /** The listening descriptors the primary bound, one list per `qmqp_listen` call. */
  readonly listenFds: readonly (readonly number[])[];
  /** Where READY/RELOADING go instead of systemd: to the primary. */
  readonly notifier: Notifier;
  /** Metrics go to the primary, which serves the sum of its workers' (src/worker-metrics.ts). */
  serveMetrics(registry: Registry): Promise<MetricsServer>;
}

/**
 * Where the config's `qmqp_listen` calls get their sockets: bound here, or
 * (in a worker of `--workers`) the descriptors the primary bound for the
 * same call, in call order.
 */
function listenerHost(listeners: ReplaySubject<Listener>, inherited: readonly (readonly number[])[] | undefined): (request: ListenRequest) => void {
  let calls = 0;
  return (request) => {
    if (inherited !== undefined) {
      const fds = inherited[calls++];
      if (fds === undefined) throw new Error('qmqp_listen after startup is not available with --workers');
      if (fds.length === 0 && request.target.kind === 'systemd') logPlain('No systemd socket');
      for (const fd of fds) listeners.next(adoptListener(fd, request.handler, request.maxSize, listenTargetName(request.target)));
      return;
    }
    if (request.target.kind === 'systemd') {
      const fds = takeListenFds();
      if (fds.length === 0) logPlain('No systemd socket');
      for (const fd of fds) listeners.next(adoptListener(fd, request.handler, request.maxSize));
      return;
    }
    listeners.next(bindListener(request.target, request.handler, request.maxSize));
  };
}

/** Runs until shutdown; resolves with the exit status. */
export async function runDaemon(options: DaemonOptions): Promise<number> {
  // Caught from the start: SIGHUP during startup is handled right after it.
  const stopSignals = pendingSignals('SIGTERM', 'SIGINT', 'SIGQUIT');
  const hangups = pendingSignals('SIGHUP');

  const listeners = new ReplaySubject<Listener>();
  const opened: Listener[] = [];
  listeners.subscribe((l) => opened.push(l));
  const worker = options.worker;
  const metrics = metricsHost(worker === undefined ? serveMetrics : (_address, registry) => worker.serveMetrics(registry));
  const startup = (async () => {
    const engine = await LuaEngine.load(
      options.configPath,
      { listen: listenerHost(listeners, options.worker?.listenFds), metricsListen: metrics.listen },
      { runTimeLimitMs: options.timeouts.luaRunTimeMs },
    );
    if (opened.length === 0) throw new ConfigError('No QMQP listeners configured');
    const settings = engine.finishStartup();
    return {
      engine,
      receiveBudget: new ReceiveBudget(settings.maxBytesInFlight ?? defaultReceiveBudget(totalmem())),
      mailLog: settings.logServer === undefined ? undefined : createMailLogger(settings.logServer),
      limits: connectionLimits({
        maxConnections: settings.maxConnections ?? defaultMaxConnections(),
        maxPerUid: settings.maxConnectionsPerUid ?? DEFAULT_MAX_CONNECTIONS_PER_UID,
      }),
      metricsServer: await metrics.start(),
    };
  })();
  // A stop signal during startup abandons it: a startup that never ends (seen
  // once under heavy load, not understood) must not leave a daemon that
  // ignores SIGTERM.  (A signal that arrives while the config runs is seen
  // when the config has run; whichever of the two comes first wins.)
  let started: Awaited<typeof startup>;
  try {
    const outcome = await Promise.race([startup, firstValueFrom(stopSignals.signals$), stuckWhile(startup, options.timeouts.stuckCodeMs)]);
    if (typeof outcome === 'number') {
      // the config held the process and was stopped: the startup is abandoned half way
      stopSignals.stop();
      hangups.stop();
      logPlain(stuckAtStartup(options.configPath, outcome).message);
      listeners.subscribe(closeListener);
      removeOwnFiles(opened);
      return 1;
    }
    if (typeof outcome === 'string') {
      startup.catch(() => {
        // abandoned: its outcome no longer matters
      });
      stopSignals.stop();
      hangups.stop();
      logPlain(`caught signal ${signalNumber(outcome)} during startup, exiting (pid=${process.pid})`);
      listeners.subscribe(closeListener);
      removeOwnFiles(opened);
      return 0;
    }
    started = outcome;
  } catch (e) {
    stopSignals.stop();
    hangups.stop();
    if (!(e instanceof ConfigError)) throw e;
    logPlain(e.message);
    listeners.subscribe(closeListener);
    removeOwnFiles(opened);
    return 1;
  }
  const { engine, receiveBudget, mailLog, limits, metricsServer } = started;
  // a worker's metrics are served by the primary, which logs the address
  if (logMails) logStartup(options.configPath, opened, options.version, worker === undefined ? metrics.address : undefined);

  const notifier = options.worker?.notifier ?? createNotifier();
  const backoff = new ServerBackoff({ firstMs: options.timeouts.serverBackoffFirstMs, maxMs: options.timeouts.serverBackoffMaxMs });
  if (metricsServer !== undefined) backoffGauges(() => backoff.snapshot());
  const stopping$ = new Subject<void>();
  const cancelAll$ = new Subject<void>();

  // SIGHUP → reload(), then the host names of address objects are looked
  // up again (mail goes on meanwhile); never two at once, and the SIGHUPs
  // that arrive during a run coalesce into one more run after it.
  const reload$ = defer(() => {
    notifier.notify(reloadingMessage());
    const started = performance.now();
    return engine.reload().pipe(
      tap((outcome) => {
        if (outcome.kind === 'failed') logPlain(outcome.error);
        if (logMails) logReload(outcome.kind, performance.now() - started);
      }),
      mergeMap(() => engine.refreshAddresses()),
      tap((lines) => {
        for (const line of lines) logPlain(line);
        notifier.notify('READY=1');
      }),
    );
  });
  hangups.signals$.pipe(throttle(() => reload$, { leading: true, trailing: true }), takeUntil(stopping$)).subscribe();

  watchdogPings$()
    .pipe(takeUntil(stopping$))
    .subscribe((message) => notifier.notify(message));

  let exitStatus = 0;
  /** Stops taking connections; mails in flight get the grace period (below), then the process ends. */
  const stop = (line: string): void => {
    if (stopping$.isStopped) return;
    // later signals get the default action and end the process at once
    stopSignals.stop();
    hangups.stop();
    logPlain(line);
    notifier.notify('STOPPING=1');
    stopping$.next();
    stopping$.complete();
  };
  stopSignals.signals$.pipe(take(1)).subscribe((name) => stop(`caught signal ${signalNumber(name)}, shutting down (pid=${process.pid})`));

  // Code that held the process so long that it was stopped from outside
  // (what Lua's run-time limit cannot stop) left its state half done: the
  // Lua state is abandoned (its mail, and every later one, fails with
  // `Zscript failed`) and the process ends like on SIGTERM, with status
  // EXIT_STUCK, for the service manager or the primary to start a fresh
  // one.  Should the ending itself not finish, the kernel kills it; it
  // also kills a process that not even the stop frees (blocked in a
  // system call) after twice the limit.
  const stuck = stuckCode$(options.timeouts.stuckCodeMs)
    .pipe(take(1))
    .subscribe((heldMs) => {
      const seconds = (heldMs / 1000).toFixed(1);
      const inLua = engine.running;
      if (inLua) engine.abandon(stuckLuaCode(heldMs));
      exitStatus = EXIT_STUCK;
      killAfter(options.timeouts.shutdownGraceMs + options.timeouts.stuckCodeMs);
      stop(
        `stuck: ${inLua ? 'Lua code' : 'code'} held the process for ${seconds} s and was stopped; ` +
          `${inLua ? 'the Lua state is abandoned, ' : ''}no new connections, exiting with status ${EXIT_STUCK} once the mails in flight are done (pid=${process.pid})`,
      );
    });

  // After the grace period, whatever is still in flight is cancelled the
  // way a client disconnect cancels it.
  stopping$
    .pipe(mergeMap(() => timer(options.timeouts.shutdownGraceMs)))
    .subscribe(() => {
      cancelAll$.next();
      cancelAll$.complete();
    });

  return new Promise<number>((resolve) => {
    concat(
      accepted$(listeners, limits.gate).pipe(
        takeUntil(stopping$),
        withPeerCredentials(),
        limits.serve((client) => serveClient(client, { policy: engine, mailLog, shutdown$: cancelAll$, timeouts: options.timeouts, backoff, receiveBudget })),
      ),
      of(undefined).pipe(
        tap(() => {
          terminateAllChildren();
          engine.shutdown();
        }),
        ignoreElements(),
      ),
    )
      .pipe(
        finalize(() => {
          stuck.unsubscribe();
          removeOwnFiles(opened);
          metricsServer?.close();
          cancelAll$.complete();
          notifier.close();
          resolve(exitStatus);
        }),
      )
      .subscribe();
    notifier.notify('READY=1');
    releaseAfterStartup();
  });
}
