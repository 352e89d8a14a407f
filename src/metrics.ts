// The Prometheus metrics (docs/metrics.md), in one registry that any
// module may add its own metrics to (prom-client).  Off unless the
// configuration calls metrics_listen(): until then nothing is recorded
// but a few plain counters (`gauges` below), so a mail costs nothing extra,
// and prom-client is not even loaded (about 2 MB of an idle daemon): the
// metrics below are no-ops until enableMetrics() loads it and creates them.
import type { Counter, Histogram, Registry } from 'prom-client';

type PromClient = typeof import('prom-client');

let enabled = false;

/** Whether metrics_listen() was called: record only then. */
export function metricsEnabled(): boolean {
  return enabled;
}

/**
 * Levels kept as plain numbers by the code that changes them (cheap
 * whether metrics are on or not) and read when Prometheus scrapes.
 */
export const gauges = {
  connectionsInFlight: 0,
  mailsInFlight: 0,
};

/** Stands in for every metric while metrics are off: records nothing. */
const OFF = {
  inc(): void {},
  observe(): void {},
  labels() {
    return OFF;
  },
};
const off = <T>(): T => OFF as unknown as T;

/** The one registry (once enabled): add a metric with `registers: [registry]`. */
let registry: Registry | undefined;
/** Mails by listener, action and answer class (K, Z, D, canceled). */
export let mailsTotal: Counter<'listener' | 'action' | 'answer'> = off();
/** From accepting the connection to the end of the mail. */
export let mailDuration: Histogram<'action'> = off();
export let luaHandlerErrors: Counter = off();
export let luaTimeLimitStops: Counter = off();
export let luaMemoryLimitStops: Counter = off();
/** Connection limits (max_connections, max_connections_per_uid). */
export let connectionLimitHits: Counter<'limit'> = off();
export let pondSendErrors: Counter = off();

/** Creates the metrics above (and the in-flight gauges) in `registry`. */
function createMetrics(prom: PromClient, registry: Registry): void {
  mailsTotal = new prom.Counter({
    name: 'qrelay_mails_total',
    help: 'Mails processed, by listener, action (connect, exec, exec_raw, discard, reject, script-failed, -) and answer (K, Z, D, canceled)',
    labelNames: ['listener', 'action', 'answer'] as const,
    registers: [registry],
  });
  mailDuration = new prom.Histogram({
    name: 'qrelay_mail_duration_seconds',
    help: 'Time from accepting the connection to the end of the mail, by action',
    labelNames: ['action'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers: [registry],
  });
  luaHandlerErrors = new prom.Counter({
    name: 'qrelay_lua_handler_errors_total',
    help: 'Mails whose handler raised an error or returned no action (answered Zscript failed)',
    registers: [registry],
  });
  luaTimeLimitStops = new prom.Counter({
    name: 'qrelay_lua_time_limit_stops_total',
    help: 'Lua runs (handlers, reload, tasks) stopped by the run-time limit',
    registers: [registry],
  });
  luaMemoryLimitStops = new prom.Counter({
    name: 'qrelay_lua_memory_limit_stops_total',
    help: 'Lua runs (handlers, reload, tasks) stopped by the Lua heap cap (lua_memory_limit)',
    registers: [registry],
  });
  connectionLimitHits = new prom.Counter({
    name: 'qrelay_connection_limit_hits_total',
    help: 'Times a connection limit held a client back: limit="global" (accepting paused at max_connections), limit="uid" (answered Ztoo many connections from uid N)',
    labelNames: ['limit'] as const,
    registers: [registry],
  });
  pondSendErrors = new prom.Counter({
    name: 'qrelay_pond_send_errors_total',
    help: 'Pond log records that could not be sent to log_server',
    registers: [registry],
  });
  new prom.Gauge({
    name: 'qrelay_connections_in_flight',
    help: 'Client connections open now',
    registers: [registry],
    collect() {
      this.set(gauges.connectionsInFlight);
    },
  });
  new prom.Gauge({
    name: 'qrelay_mails_in_flight',
    help: 'Mails parsed and not yet finished (handler running or action under way)',
    registers: [registry],
    collect() {
      this.set(gauges.mailsInFlight);
    },
  });
}

let prom: PromClient | undefined;

/**
 * Called once when the daemon serves metrics (before any mail): loads
 * prom-client, creates the metrics and starts the process metrics.
 * Resolves with the registry.
 */
export async function enableMetrics(): Promise<Registry> {
  if (registry !== undefined) return registry;
  prom = await import('prom-client');
  const created = new prom.Registry();
  createMetrics(prom, created);
  prom.collectDefaultMetrics({ register: created, prefix: 'qrelay_' });
  registry = created;
  enabled = true;
  return created;
}

/** prom-client and the registry, once enabled (gauges added later need them). */
function enabledRegistry(): { prom: PromClient; registry: Registry } {
  if (prom === undefined || registry === undefined) throw new Error('metrics are not enabled');
  return { prom, registry };
}

/** Registers a gauge read at scrape time from `read` (e.g. the number of running children). */
export function gaugeFrom(name: string, help: string, read: () => number): void {
  const { prom, registry } = enabledRegistry();
  new prom.Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      this.set(read());
    },
  });
}

/** What the metrics show of one downstream server in backoff (src/actions/server-backoff.ts). */
export interface BackoffView {
  readonly server: string;
  readonly failures: number;
  /** Skipped until then (ms since the epoch). */
  readonly until: number;
}

/** Registers the backoff gauges, read at scrape time from `read` (servers not in backoff are absent). */
export function backoffGauges(read: () => readonly BackoffView[]): void {
  const { prom, registry } = enabledRegistry();
  new prom.Gauge({
    name: 'qrelay_server_failures',
    help: 'Downstream servers in backoff: failures since their last answer, by server',
    labelNames: ['server'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of read()) this.set({ server: s.server }, s.failures);
    },
  });
  new prom.Gauge({
    name: 'qrelay_server_backoff_seconds',
    help: 'Downstream servers in backoff: seconds until they are tried again (0: a probe may go now), by server',
    labelNames: ['server'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const now = Date.now();
      for (const s of read()) this.set({ server: s.server }, Math.max(0, (s.until - now) / 1000));
    },
  });
}
