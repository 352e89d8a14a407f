// Metrics with `--workers` (docs/metrics.md): the primary serves the sum of
// its workers' metrics on the config's metrics_listen address.  For each
// scrape it asks every worker over the IPC channel it already has for its
// registry as JSON (prom-client's getMetricsAsJSON) and adds them up with
// prom-client's own aggregation (AggregatorRegistry.aggregate: what each
// metric declares, a sum for qrelay's counters, gauges and histograms).  A
// worker that does not answer within ANSWER_TIMEOUT_MS is left out of that
// scrape rather than holding it up.  The primary adds its own two metrics:
// the workers running and the workers replaced.
import type { ChildProcess } from 'node:child_process';
import { AggregatorRegistry, Counter, Gauge, Registry, type MetricObjectWithValues, type MetricValue } from 'prom-client';
import type { MetricsServer, MetricsSource } from './streams/metrics-server.js';

const ANSWER_TIMEOUT_MS = 2_000;

type WorkerMetricsJson = MetricObjectWithValues<MetricValue<string>>[];

interface Request {
  readonly metricsRequest: number;
}

interface Answer {
  readonly metricsAnswer: number;
  readonly metrics: WorkerMetricsJson;
}

/**
 * In a worker: answers the primary's requests with `registry`, until the
 * returned server is closed.
 */
export function answerMetricsRequests(registry: Registry): MetricsServer {
  const onMessage = (message: unknown): void => {
    const id = (message as Partial<Request> | null)?.metricsRequest;
    if (typeof id !== 'number') return;
    const answer = (metrics: WorkerMetricsJson): void => void process.send?.({ metricsAnswer: id, metrics } satisfies Answer);
    registry.getMetricsAsJSON().then(answer, () => answer([]));
  };
  process.on('message', onMessage);
  return { close: () => process.off('message', onMessage) };
}

/** In the primary: the sum of the workers' metrics, and the primary's own. */
export class WorkerMetrics implements MetricsSource {
  private readonly own = new Registry();
  private readonly waiting = new Map<number, (metrics: WorkerMetricsJson | undefined) => void>();
  private nextId = 0;
  private readonly replaced = new Counter({
    name: 'qrelay_worker_restarts_total',
    help: 'Worker processes (--workers) that exited unasked and were replaced; their counts start again from 0',
    registers: [this.own],
  });

  /** `workers()`: the worker processes running now. */
  constructor(private readonly workers: () => Iterable<ChildProcess>) {
    new Gauge({
      name: 'qrelay_workers',
      help: 'Worker processes (--workers) running',
      registers: [this.own],
      collect() {
        this.set([...workers()].length);
      },
    });
  }

  get contentType(): string {
    return this.own.contentType;
  }

  /** Counts a worker that was replaced. */
  workerReplaced(): void {
    this.replaced.inc();
  }

  /** A message from a worker; true when it was an answer to a request of ours. */
  received(message: unknown): boolean {
    const answer = message as Partial<Answer> | null;
    if (typeof answer?.metricsAnswer !== 'number') return false;
    this.waiting.get(answer.metricsAnswer)?.(answer.metrics ?? []);
    return true;
  }

  async metrics(): Promise<string> {
    const answers = await Promise.all([...this.workers()].map((worker) => this.ask(worker)));
    const all = [...answers.filter((a): a is WorkerMetricsJson => a !== undefined), await this.own.getMetricsAsJSON()];
    return AggregatorRegistry.aggregate(all).metrics();
  }

  /** One worker's metrics, or undefined when it cannot answer in time. */
  private ask(worker: ChildProcess): Promise<WorkerMetricsJson | undefined> {
    const id = ++this.nextId;
    return new Promise((resolve) => {
      const done = (metrics: WorkerMetricsJson | undefined): void => {
        clearTimeout(timer);
        this.waiting.delete(id);
        resolve(metrics);
      };
      const timer = setTimeout(() => done(undefined), ANSWER_TIMEOUT_MS);
      this.waiting.set(id, done);
      if (!worker.connected) done(undefined);
      else worker.send({ metricsRequest: id } satisfies Request, (error) => error && done(undefined));
    });
  }
}
