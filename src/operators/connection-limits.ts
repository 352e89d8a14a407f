// Stage: the connection limits (what one local user, or all of them, can
// hold).  Every connection holds a slot of the global budget while it is
// served; with none left the accept source stops polling the listeners, so
// new clients wait in the kernel's listen backlog (as with a busy
// original) and are taken as soon as a connection ends.  A uid that already
// has `maxPerUid` connections in flight gets `Ztoo many connections from
// uid N` at once, so one user cannot take every slot.
import { BehaviorSubject, Observable, type OperatorFunction, type Subscriber } from '../rx.js';
import { throttledLog } from '../log.js';
import { connectionLimitHits } from '../metrics.js';
import { openFileLimit } from '../native/linux.js';
import type { ClientReader } from '../streams/client-pipe.js';
import type { AcceptGate } from '../streams/listener.js';
import type { Client } from '../client.js';

export const DEFAULT_MAX_CONNECTIONS_PER_UID = 64;
/** Descriptors kept free for the daemon itself (listeners, log sockets, Lua files, pg). */
const RESERVED_DESCRIPTORS = 128;
/** Descriptors one connection may need: client, downstream or two pipes, pidfds, a cgroup. */
const DESCRIPTORS_PER_CONNECTION = 5;
const LOG_INTERVAL_MS = 60_000;
/** How long a refused client may take to finish sending before it is closed. */
const REFUSED_LINGER_MS = 5_000;

/** The default global cap: what the descriptor limit allows. */
export function defaultMaxConnections(): number {
  return Math.max(16, Math.floor((openFileLimit() - RESERVED_DESCRIPTORS) / DESCRIPTORS_PER_CONNECTION));
}

export interface ConnectionLimitSettings {
  /** Connections in flight at most (all clients together). */
  readonly maxConnections: number;
  /** Connections in flight per client uid at most; 0: no such limit. */
  readonly maxPerUid: number;
}

/** The global budget of connections in flight, as the accept source's gate. */
class ConnectionBudget implements AcceptGate {
  private inFlight = 0;
  private readonly open = new BehaviorSubject(true);
  readonly open$: Observable<boolean> = this.open;
  private readonly logFull = throttledLog(LOG_INTERVAL_MS);
  private readonly logAcceptError = throttledLog(LOG_INTERVAL_MS);

  constructor(private readonly max: number) {}

  take(): void {
    if (++this.inFlight < this.max) return;
    connectionLimitHits.inc({ limit: 'global' });
    this.logFull(undefined, `Connection limit of ${this.max} reached: not accepting until a connection ends`);
    this.open.next(false);
  }

  release(): void {
    if (this.inFlight-- === this.max) this.open.next(true);
  }

  acceptFailed(error: Error): void {
    this.logAcceptError(undefined, error.message);
  }
}

/** Connections in flight per uid. */
class UidCounts {
  private readonly counts = new Map<number, number>();
  private readonly logRefused = throttledLog(LOG_INTERVAL_MS);

  constructor(private readonly max: number) {}

  /** Counts the client in, or answers it and returns false when its uid is at the limit. */
  admit(client: Client): boolean {
    const uid = client.credentials?.uid;
    if (uid === undefined || this.max === 0) return true;
    const count = this.counts.get(uid) ?? 0;
    if (count >= this.max) {
      connectionLimitHits.inc({ limit: 'uid' });
      this.logRefused(client.domain, `Too many connections from uid ${uid} (max_connections_per_uid ${this.max})`);
      return false;
    }
    this.counts.set(uid, count + 1);
    return true;
  }

  release(client: Client): void {
    const uid = client.credentials?.uid;
    if (uid === undefined || this.max === 0) return;
    const count = this.counts.get(uid)! - 1;
    if (count === 0) this.counts.delete(uid);
    else this.counts.set(uid, count);
  }
}

/**
 * Answers at once, without reading the request; the connection stays open
 * (what the client still sends is dropped) until the client closes it or
 * REFUSED_LINGER_MS pass, so a client still writing its request gets no
 * EPIPE and reads the answer.  Completes when the connection is closed.
 */
function refuse(client: Client, text: string): Observable<never> {
  return new Observable<never>((subscriber) => {
    const socket = client.socket;
    const finish = (): void => subscriber.complete();
    // the drain: what the client sends is dropped; its end (or a failed write or read) is the connection's
    const drain: ClientReader = { data: ignore, end: finish, failed: finish };
    socket.reader = drain;
    // `text` is ASCII: its length is its byte count
    socket.end(`${text.length}:${text},`);
    const timer = setTimeout(finish, REFUSED_LINGER_MS);
    return () => {
      clearTimeout(timer);
      if (socket.reader === drain) socket.reader = undefined;
      socket.destroy();
    };
  });
}

function ignore(): void {}

export interface ConnectionLimits {
  /** For the accept source: pauses accepting at the global cap. */
  readonly gate: AcceptGate;
  /**
   * Serves each client with `serve` within the limits (like mergeMap, all
   * clients at once: the global cap works through `gate`, which stops the
   * accept source): the client holds its slots until its stream ends; one
   * over its uid's limit is answered `Ztoo many connections from uid N` and
   * closed instead.  Emits nothing; completes when the clients complete and
   * every served stream has ended.  Unsubscribing unsubscribes every served
   * stream (releasing its slots) and closes refused connections.
   */
  serve(serve: (client: Client) => Observable<never>): OperatorFunction<Client, never>;
}

/** The limits of one daemon process: one budget and one per-uid count for all its listeners. */
export function connectionLimits(settings: ConnectionLimitSettings): ConnectionLimits {
  const budget = new ConnectionBudget(settings.maxConnections);
  const uids = new UidCounts(settings.maxPerUid);
  return {
    gate: budget,
    // the same as mergeMap(client => served$.pipe(finalize(release uid), finalize(release budget))),
    // without mergeMap's closures and two lifted finalize stages per connection
    serve: (serve) => (serveAll).bind(undefined, budget, uids, serve),
  };
}

function serveAll(budget: ConnectionBudget, uids: UidCounts, serve: (client: Client) => Observable<never>, clients: Observable<Client>): Observable<never> {
  return new Observable<never>(subscribeClients.bind(undefined, clients, budget, uids, serve));
}

function subscribeClients(
  clients: Observable<Client>,
  budget: ConnectionBudget,
  uids: UidCounts,
  serve: (client: Client) => Observable<never>,
  subscriber: Subscriber<never>,
): void {
  subscriber.add(clients.subscribe(new ServedClients(budget, uids, serve, subscriber)));
}

/** The observer of the clients: serves each within the limits, counts the streams served. */
class ServedClients {
  private served = 0;
  private accepting = true;

  constructor(
    readonly budget: ConnectionBudget,
    readonly uids: UidCounts,
    private readonly serve: (client: Client) => Observable<never>,
    private readonly subscriber: Subscriber<never>,
  ) {}

  next(client: Client): void {
    // taken synchronously, before the accept source takes the next connection
    this.budget.take();
    const admitted = this.uids.admit(client);
    const served$ = admitted ? this.serve(client) : refuse(client, `Ztoo many connections from uid ${client.credentials!.uid}`);
    const slots = new ClientSlots(this, client, admitted);
    this.served++;
    const subscription = served$.subscribe(slots);
    // released when the stream ends (at once if it already has) or is unsubscribed
    subscription.add(slots);
    this.subscriber.add(subscription);
  }

  error(e: unknown): void {
    this.subscriber.error(e);
  }

  complete(): void {
    this.accepting = false;
    if (this.served === 0) this.subscriber.complete();
  }

  /** A served stream ended and released its slots. */
  ended(): void {
    this.served--;
    if (!this.accepting && this.served === 0) this.subscriber.complete();
  }
}

/** The observer of one client's stream (it emits nothing) and the slots it holds, released on its teardown. */
class ClientSlots {
  constructor(
    private readonly clients: ServedClients,
    private readonly client: Client,
    private readonly admitted: boolean,
  ) {}

  error(e: unknown): void {
    this.clients.error(e);
  }

  unsubscribe(): void {
    const clients = this.clients;
    if (this.admitted) clients.uids.release(this.client);
    clients.budget.release();
    clients.ended();
  }
}
