// JavaScript side of the `pg` library (pg.lua): the connection objects by
// number, the suspending `pg_execute` operation the engine runs for
// `db:execute`, LISTEN registrations, and closing them all at shutdown.
import { map, of, type Observable } from '../../rx.js';
import type { LibraryContext, LuaLibrary } from '../library.js';
import { LuaError, type LuaArg, type LuaPushable } from '../lua-values.js';
import { PgConnection } from './pg/connection.js';
import type { QueryOutcome, QueryRequest } from './pg/query-outcome.js';
import { NotUtf8Error, luaBytes, parameterText, serverText } from './pg/query-text.js';

/** Every open connection of the process, for the daemon's shutdown. */
const openConnections = new Set<PgConnection>();

/** The values `db:execute` gets back, read by pg.lua's `finish`. */
function outcomeValues(outcome: QueryOutcome): LuaPushable[] {
  switch (outcome.kind) {
    case 'result':
      return ['result', outcome.fields.map(luaBytes), outcome.rows.map((row) => row.map((v) => (v === null ? null : luaBytes(v))))];
    case 'error':
      return ['error', luaBytes(outcome.message)];
    case 'broken':
      return [];
  }
}

function queryRequest(sql: LuaArg, withParams: LuaArg, params: LuaArg[]): QueryRequest {
  return {
    sql: serverText(String(sql), 'query text'),
    params: withParams === true ? params.map((p, i) => parameterText(typeof p === 'number' || typeof p === 'string' ? p : undefined, i + 1)) : undefined,
  };
}

export const pgLibrary: LuaLibrary = {
  name: 'pg',
  // the array helpers, which pg.lua puts into its table
  parts: ['pg/array'],
  primitives: ({ host }: LibraryContext) => {
    const connections = new Map<number, PgConnection>();
    let nextId = 1;

    host.addOperation('pg_execute', ([id, sql, withParams, ...params]): Observable<LuaPushable[]> => {
      const connection = connections.get(Number(id));
      if (connection === undefined) return of(['error', 'Connection is closed']);
      let request: QueryRequest;
      try {
        request = queryRequest(sql, withParams, params);
      } catch (e) {
        if (e instanceof NotUtf8Error) return of(['error', e.message]);
        throw e;
      }
      return connection.execute$(request).pipe(map(outcomeValues));
    });

    return {
      new: ([conninfo, schema]) => {
        const id = nextId++;
        // the connection string is only read when connecting (not validated now)
        const connection = new PgConnection(Buffer.from(String(conninfo), 'latin1').toString('utf8'), serverText(String(schema), 'schema'));
        connections.set(id, connection);
        openConnections.add(connection);
        return id;
      },
      listen: ([id, channel, task]) => {
        let name: string;
        try {
          name = serverText(String(channel), 'notify name');
        } catch (e) {
          throw new LuaError((e as Error).message.trimEnd());
        }
        connections.get(Number(id))?.listen(name, () => host.runTask(Number(task)));
      },
      close: ([id]) => {
        const connection = connections.get(Number(id));
        if (connection === undefined) return;
        connections.delete(Number(id));
        openConnections.delete(connection);
        connection.close();
      },
    };
  },
  dryRun: ({ host }) => ({
    listen: () => host.refuse('pg.listen'),
  }),
  shutdown: () => {
    for (const connection of openConnections) connection.close();
    openConnections.clear();
  },
};
