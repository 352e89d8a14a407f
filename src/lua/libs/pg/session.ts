// One established database connection (a pg client): opened with SET SCHEMA
// and the LISTENs, runs one query at a time, can cancel the running one,
// and tells when it is gone.
import type { Client, CustomTypesConfig, DatabaseError, QueryArrayConfig } from 'pg';
import { isDatabaseError, pgDriver } from './driver.js';
import type { BackendKey } from './cancel-request.js';
import { sendCancelRequest } from './cancel-request.js';
import { connectTarget, type Endpoint } from './client-config.js';
import { parseConninfo } from './conninfo.js';
import { connectFailureText, serverErrorText } from './error-text.js';
import type { QueryOutcome, QueryRequest } from './query-outcome.js';

/** Every value stays in PostgreSQL's text format (the original returns PQgetvalue's text). */
const TEXT_VALUES = { getTypeParser: () => (text: string) => text } as unknown as CustomTypesConfig;

/** A connection that could not be established; the message is libpq's wording. */
export class ConnectFailure extends Error {}

export interface SessionSetup {
  readonly conninfo: string;
  /** `SET SCHEMA` after connecting when not empty. */
  readonly schema: string;
  /** Channels to LISTEN on. */
  readonly channels: Iterable<string>;
  readonly notification: (channel: string) => void;
}

/** pg's extended-protocol switch, missing from @types/pg. */
interface ExtendedQueryConfig extends QueryArrayConfig {
  readonly queryMode: 'extended';
}

/** The backend key pg keeps on the client (untyped in @types/pg). */
interface ClientBackendKey {
  readonly processID: number | null;
  readonly secretKey: number | null;
}

function lastResult<T>(result: T | T[]): T {
  // a simple query with several statements gives one result each
  return Array.isArray(result) ? result[result.length - 1]! : result;
}

/** A fatal server error ends the connection; anything but a server error means it broke. */
function isStatementError(e: unknown): e is DatabaseError {
  return isDatabaseError(e) && e.severity !== 'FATAL' && e.severity !== 'PANIC';
}

export class PgSession {
  /** Settles when the connection is gone, whatever the reason. */
  readonly ended: Promise<void>;

  private constructor(
    private readonly client: Client,
    private readonly endpoint: Endpoint,
  ) {
    this.ended = new Promise((resolve) => client.once('end', () => resolve()));
    // losses show as 'end'; without a listener an 'error' event would end the process
    client.on('error', () => {});
  }

  /** Connects; rejects with a ConnectFailure. */
  static async open(setup: SessionSetup): Promise<PgSession> {
    let endpoint: Endpoint | undefined;
    let session: PgSession | undefined;
    try {
      const target = connectTarget(parseConninfo(setup.conninfo));
      endpoint = target.endpoint;
      const pg = await pgDriver();
      const client = new pg.Client({ ...target.config, types: TEXT_VALUES });
      session = new PgSession(client, target.endpoint);
      client.on('notification', (message) => setup.notification(message.channel));
      await client.connect();
    } catch (e) {
      session?.close();
      throw new ConnectFailure(connectFailureText(e, endpoint));
    }
    if (setup.schema !== '') {
      const sql = `SET SCHEMA '${setup.schema.replaceAll("'", "''")}'`;
      const outcome = await session.query({ sql });
      if (outcome.kind !== 'result') {
        session.close();
        throw new ConnectFailure(outcome.kind === 'error' ? outcome.message : connectFailureText(new Error('Connection terminated unexpectedly'), endpoint));
      }
    }
    // a failing LISTEN (e.g. a name with a quote) must not cost the connection
    for (const channel of setup.channels) await session.query({ sql: `LISTEN "${channel}"` });
    return session;
  }

  async query(request: QueryRequest): Promise<QueryOutcome> {
    try {
      const config: QueryArrayConfig | ExtendedQueryConfig =
        request.params === undefined
          ? { text: request.sql, rowMode: 'array' }
          : { text: request.sql, values: [...request.params], rowMode: 'array', queryMode: 'extended' };
      const result = lastResult(await this.client.query(config));
      return { kind: 'result', fields: result.fields.map((f) => f.name), rows: result.rows as (string | null)[][] };
    } catch (e) {
      if (isStatementError(e)) return { kind: 'error', message: serverErrorText(e, request.sql) };
      return { kind: 'broken' };
    }
  }

  /** Asks the server to cancel what this connection is running (its result then tells). */
  cancelRunning(): void {
    const { processID, secretKey } = this.client as unknown as ClientBackendKey;
    if (processID === null || secretKey === null) return;
    const key: BackendKey = { processID, secretKey };
    sendCancelRequest(this.endpoint, key);
  }

  close(): void {
    this.client.end().catch(() => {});
  }
}
