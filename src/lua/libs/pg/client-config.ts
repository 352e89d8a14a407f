// libpq connection options (conninfo.ts) as a pg client configuration, with
// libpq's defaults: PG* environment variables, then the Unix socket folder
// of Debian's libpq, port 5432, the OS user, a database named after the user.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { ConnectionOptions as TlsOptions } from 'node:tls';
import type { ClientConfig } from 'pg';
import { ConninfoError, type ConnectionOptions } from './conninfo.js';

/** Debian's libpq default (DEFAULT_PGSOCKET_DIR). */
const DEFAULT_SOCKET_DIR = '/var/run/postgresql';
const DEFAULT_PORT = 5432;

/** Where the server is, for connecting, cancel requests and error texts. */
export type Endpoint =
  | { readonly kind: 'socket'; readonly path: string }
  | { readonly kind: 'tcp'; readonly host: string; readonly address: string | undefined; readonly port: number };

export interface ConnectTarget {
  readonly config: ClientConfig;
  readonly endpoint: Endpoint;
}

/** Environment variables libpq reads for unset keywords. */
const ENVIRONMENT: Readonly<Record<string, string>> = {
  host: 'PGHOST',
  hostaddr: 'PGHOSTADDR',
  port: 'PGPORT',
  dbname: 'PGDATABASE',
  user: 'PGUSER',
  password: 'PGPASSWORD',
  connect_timeout: 'PGCONNECT_TIMEOUT',
  options: 'PGOPTIONS',
  application_name: 'PGAPPNAME',
  sslmode: 'PGSSLMODE',
  sslrootcert: 'PGSSLROOTCERT',
  sslcert: 'PGSSLCERT',
  sslkey: 'PGSSLKEY',
};

const SSL_MODES = new Set(['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full']);

function integerOption(name: string, value: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(value)) throw new ConninfoError(`invalid integer value "${value}" for connection option "${name}"\n`);
  return Number(value);
}

function readFileOption(what: string, path: string): Buffer {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new ConninfoError(`could not read ${what} file "${path}": ${(e as Error).message}\n`);
  }
}

function tlsOptions(mode: string, get: (name: string) => string | undefined, servername: string): TlsOptions | false {
  if (mode === 'disable' || mode === 'allow' || mode === 'prefer') return false;
  const root = get('sslrootcert');
  const cert = get('sslcert');
  const key = get('sslkey');
  const options: TlsOptions = {
    rejectUnauthorized: mode !== 'require',
    servername,
    ...(root === undefined ? {} : { ca: readFileOption('root certificate', root) }),
    ...(cert === undefined ? {} : { cert: readFileOption('certificate', cert) }),
    ...(key === undefined ? {} : { key: readFileOption('private key', key) }),
  };
  // verify-ca checks the chain but not the host name
  if (mode === 'verify-ca') options.checkServerIdentity = () => undefined;
  return options;
}

/**
 * The pg configuration for `options`.  Only the first of several hosts is
 * used (libpq would try each in turn).
 */
export function connectTarget(options: ConnectionOptions, environment: NodeJS.ProcessEnv = process.env): ConnectTarget {
  const get = (name: string): string | undefined => {
    const value = options.get(name) ?? (ENVIRONMENT[name] === undefined ? undefined : environment[ENVIRONMENT[name]!]);
    return value === undefined || value === '' ? undefined : value;
  };
  const host = get('host')?.split(',')[0] || undefined;
  const address = get('hostaddr')?.split(',')[0] || undefined;
  const portText = get('port')?.split(',')[0] || undefined;
  const port = portText === undefined ? DEFAULT_PORT : integerOption('port', portText);
  if (port < 1 || port > 65535) throw new ConninfoError(`invalid port number: "${portText}"\n`);
  const user = get('user') ?? userInfo().username;
  const mode = get('sslmode') ?? 'prefer';
  if (!SSL_MODES.has(mode)) throw new ConninfoError(`invalid sslmode value: "${mode}"\n`);
  const timeoutText = get('connect_timeout');
  const timeout = timeoutText === undefined ? 0 : integerOption('connect_timeout', timeoutText);

  const socketDir = address === undefined ? (host === undefined ? DEFAULT_SOCKET_DIR : host.startsWith('/') ? host : undefined) : undefined;
  const endpoint: Endpoint =
    socketDir !== undefined
      ? { kind: 'socket', path: `${socketDir}/.s.PGSQL.${port}` }
      : { kind: 'tcp', host: host ?? address!, address, port };
  const keepalivesIdle = get('keepalives_idle');
  const config: ClientConfig = {
    host: socketDir ?? address ?? host,
    port,
    user,
    database: get('dbname') ?? user,
    password: get('password'),
    options: get('options'),
    application_name: get('application_name'),
    fallback_application_name: get('fallback_application_name'),
    // libpq waits at least 2 s when a timeout is set
    connectionTimeoutMillis: timeout > 0 ? Math.max(timeout, 2) * 1000 : undefined,
    keepAlive: endpoint.kind === 'tcp' && get('keepalives') !== '0',
    keepAliveInitialDelayMillis: keepalivesIdle === undefined ? undefined : integerOption('keepalives_idle', keepalivesIdle) * 1000,
    // no TLS over Unix sockets, as in libpq
    ssl: endpoint.kind === 'socket' ? false : tlsOptions(mode, get, host ?? address!),
  };
  return { config, endpoint };
}
