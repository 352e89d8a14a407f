// The Prometheus metrics (docs/metrics.md), in one registry that any
// module may add its own metrics to (prom-client).  Off unless the
// configuration calls metrics_listen(): until then nothing is recorded
// but a few plain counters (`gauges` below), so a mail costs nothing extra.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The one registry: add a metric with `registers: [registry]`. */
export const registry = new Registry();

let enabled = false;

/** Whether metrics_listen() was called: record only then. */
export function metricsEnabled(): boolean {
  return enabled;
}

/** Called once when the daemon serves metrics: starts the process metrics. */
export function enableMetrics(): void {
  if (enabled) return;
  enabled = true;
  collectDefaultMetrics({ register: registry, prefix: 'qrelay_' });
}

/**
 * Levels kept as plain numbers by the code that changes them (cheap
 * whether metrics are on or not) and read when Prometheus scrapes.
 */
export const gauges = {
  connectionsInFlight: 0,
  mailsInFlight: 0,
};

/** Mails by listener, action and answer class (K, Z, D, canceled). */
export const mailsTotal = new Counter({
  name: 'qrelay_mails_total',
  help: 'Mails processed, by listener, action (connect, exec, exec_raw, discard, reject, script-failed, -) and answer (K, Z, D, canceled)',
  labelNames: ['listener', 'action', 'answer'] as const,
  registers: [registry],
});

/** From accepting the connection to the end of the mail. */
export const mailDuration = new Histogram({
  name: 'qrelay_mail_duration_seconds',
  help: 'Time from accepting the connection to the end of the mail, by action',
  labelNames: ['action'] as const,
  buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

export const luaHandlerErrors = new Counter({
  name: 'qrelay_lua_handler_errors_total',
  help: 'Mails whose handler raised an error or returned no action (answered Zscript failed)',
  registers: [registry],
});

export const luaTimeLimitStops = new Counter({
  name: 'qrelay_lua_time_limit_stops_total',
  help: 'Lua runs (handlers, reload, tasks) stopped by the run-time limit',
  registers: [registry],
});

export const luaMemoryLimitStops = new Counter({
  name: 'qrelay_lua_memory_limit_stops_total',
  help: 'Lua runs (handlers, reload, tasks) stopped by the Lua heap cap (lua_memory_limit)',
  registers: [registry],
});

/** Connection limits (max_connections, max_connections_per_uid). */
export const connectionLimitHits = new Counter({
  name: 'qrelay_connection_limit_hits_total',
  help: 'Times a connection limit held a client back: limit="global" (accepting paused at max_connections), limit="uid" (answered Ztoo many connections from uid N)',
  labelNames: ['limit'] as const,
  registers: [registry],
});

export const pondSendErrors = new Counter({
  name: 'qrelay_pond_send_errors_total',
  help: 'Pond log records that could not be sent to log_server',
  registers: [registry],
});

new Gauge({
  name: 'qrelay_connections_in_flight',
  help: 'Client connections open now',
  registers: [registry],
  collect() {
    this.set(gauges.connectionsInFlight);
  },
});

new Gauge({
  name: 'qrelay_mails_in_flight',
  help: 'Mails parsed and not yet finished (handler running or action under way)',
  registers: [registry],
  collect() {
    this.set(gauges.mailsInFlight);
  },
});

/** Registers a gauge read at scrape time from `read` (e.g. the number of running children). */
export function gaugeFrom(name: string, help: string, read: () => number): void {
  new Gauge({
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
  new Gauge({
    name: 'qrelay_server_failures',
    help: 'Downstream servers in backoff: failures since their last answer, by server',
    labelNames: ['server'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const s of read()) this.set({ server: s.server }, s.failures);
    },
  });
  new Gauge({
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
