// A script's database connection object (docs/pg.md): opened lazily,
// queries queued and run strictly one after another, reconnected after a
// failure or loss (at once the first time, then every 10 s until a query
// succeeds; a query while disconnected tries at once), LISTEN channels
// re-issued on every new session, NOTIFY callbacks run coalesced.
import { EMPTY, Observable, Subject, Subscription, catchError, concatMap, defer, filter, throttle, timer, type Subscriber } from '../../../rx.js';
import { PG_RECONNECT_INTERVAL_MS } from '../../../timeouts.js';
import type { QueryOutcome, QueryRequest } from './query-outcome.js';
import { PgSession } from './session.js';


interface Job {
  readonly request: QueryRequest;
  /** The script waiting for the outcome; none for the connection's own LISTENs. */
  readonly waiter: Subscriber<QueryOutcome> | undefined;
}

function deliver(waiter: Subscriber<QueryOutcome> | undefined, outcome: QueryOutcome): void {
  if (waiter === undefined || waiter.closed) return;
  waiter.next(outcome);
  waiter.complete();
}

export class PgConnection {
  private session: PgSession | undefined;
  private attempt: Promise<PgSession> | undefined;
  private reconnect = Subscription.EMPTY;
  /** Failures and losses since the last successful query. */
  private failures = 0;
  private closed = false;
  private readonly jobs = new Subject<Job>();
  private readonly work: Subscription;
  private readonly channels = new Set<string>();
  private readonly notifications$ = new Subject<string>();
  private readonly listeners = new Subscription();

  constructor(
    private readonly conninfo: string,
    private readonly schema: string,
  ) {
    this.work = this.jobs
      .pipe(
        // perform() settles every outcome itself; a failure here must not stop the queue
        concatMap((job) => defer(() => this.perform(job)).pipe(catchError(() => EMPTY))),
      )
      .subscribe();
  }

  /**
   * Queues `request`; emits its outcome once.  Unsubscribing before it runs
   * drops it; while it runs, cancels it on the server and discards the
   * outcome (the next query waits until the server is done with it).
   */
  execute$(request: QueryRequest): Observable<QueryOutcome> {
    return new Observable<QueryOutcome>((waiter) => {
      this.jobs.next({ request, waiter });
    });
  }

  /** LISTEN on `channel` now and on every later session; each NOTIFY runs `run$` (coalesced). */
  listen(channel: string, run$: () => Observable<unknown>): void {
    this.channels.add(channel);
    this.listeners.add(
      this.notifications$
        .pipe(
          filter((c) => c === channel),
          // at most one more run queued while one is running
          throttle(run$, { leading: true, trailing: true }),
        )
        .subscribe(),
    );
    this.jobs.next({ request: { sql: `LISTEN "${channel}"` }, waiter: undefined });
  }

  close(): void {
    this.closed = true;
    this.work.unsubscribe();
    this.listeners.unsubscribe();
    this.reconnect.unsubscribe();
    this.session?.close();
    this.session = undefined;
  }

  private async perform({ request, waiter }: Job): Promise<void> {
    if (waiter?.closed) return;
    let session: PgSession;
    try {
      session = await this.connect();
    } catch (e) {
      deliver(waiter, { kind: 'error', message: (e as Error).message });
      return;
    }
    if (waiter?.closed) return;
    // From here on, a script that goes away cancels the statement on the
    // server; this job still waits for the outcome, so that a late cancel
    // cannot hit the next query.
    const cancel = (): void => session.cancelRunning();
    waiter?.add(cancel);
    const outcome = await session.query(request);
    waiter?.remove(cancel);
    if (outcome.kind === 'result') this.failures = 0;
    deliver(waiter, outcome);
  }

  /** The current session, or the attempt to open one (started now if none runs). */
  private connect(): Promise<PgSession> {
    if (this.session !== undefined) return Promise.resolve(this.session);
    if (this.attempt === undefined) {
      this.reconnect.unsubscribe();
      this.attempt = PgSession.open({
        conninfo: this.conninfo,
        schema: this.schema,
        channels: this.channels,
        notification: (channel) => this.notifications$.next(channel),
      }).then(
        (session) => {
          this.attempt = undefined;
          if (this.closed) {
            session.close();
            throw new Error('Connection closed');
          }
          this.session = session;
          void session.ended.then(() => this.lost(session));
          return session;
        },
        (error: unknown) => {
          this.attempt = undefined;
          this.scheduleReconnect();
          throw error;
        },
      );
    }
    return this.attempt;
  }

  private lost(session: PgSession): void {
    if (this.session !== session) return;
    this.session = undefined;
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.closed) return;
    this.failures++;
    this.reconnect.unsubscribe();
    this.reconnect = timer(this.failures > 1 ? PG_RECONNECT_INTERVAL_MS : 0).subscribe(() => {
      this.connect().catch(() => {});
    });
  }
}
