// A private PostgreSQL server for a test file: initdb into a temporary
// folder owned by the `postgres` user (initdb refuses to run as root), a
// server listening only on a Unix socket in that folder, stopped and the
// folder removed afterwards.  Uses PostgreSQL's own binaries from
// /usr/local/bin or /usr/lib/postgresql/<version>/bin.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import pg from 'pg';

export interface PostgresServer {
  /** The folder holding the data directory and the socket. */
  readonly dir: string;
  /** libpq conninfo for the server's superuser and database `postgres`. */
  readonly conninfo: string;
  /** A connected client of the test itself (for checks and NOTIFY). */
  client(): Promise<pg.Client>;
  /** Fast shutdown; waits for the exit. */
  stop(): Promise<void>;
  /** Starts it again on the same data and socket. */
  start(): Promise<void>;
  /** Stops it and removes the folder. */
  destroy(): Promise<void>;
  /** What the server wrote to stderr. */
  log(): string;
  /** Runs `sql` with psql (libpq's own client, UTF-8); returns what it wrote to stderr. */
  psqlErrors(sql: string): string;
}

const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 15_000;

/** A PostgreSQL program from /usr/local/bin or the newest /usr/lib/postgresql/<version>/bin. */
function binary(name: string): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).sort((a, b) => Number(b) - Number(a)) : [];
  const folders = ['/usr/local/bin', ...versions.map((v) => join(root, v, 'bin'))];
  const found = folders.map((f) => join(f, name)).find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(`PostgreSQL program "${name}" not found in /usr/local/bin or /usr/lib/postgresql/*/bin: install Debian's "postgresql" package (.ci/run does)`);
  }
  return found;
}

/** uid/gid of the `postgres` user when running as root (initdb and the server refuse root). */
function serverIdentity(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'));
  if (line === undefined) throw new Error('running as root, but there is no "postgres" user to run PostgreSQL as');
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

// Servers are destroyed after the test file; any still running when the
// process ends are killed (SIGQUIT: immediate shutdown) and their folders
// removed, so a failing test cannot leave one behind.
const servers = new Set<PostgresServer>();
const running = new Set<ChildProcess>();
const folders = new Set<string>();
// only under the test runner (top level, so the hook belongs to the file)
if (process.env.NODE_TEST_CONTEXT !== undefined) {
  after(async () => {
    for (const server of servers) await server.destroy();
  });
}
process.on('exit', () => {
  for (const child of running) child.kill('SIGQUIT');
  for (const dir of folders) rmSync(dir, { recursive: true, force: true });
});

async function waitUntilAccepting(dir: string, child: ChildProcess, log: () => string): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`postgres exited during startup:\n${log()}`);
    const client = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
    client.on('error', () => {});
    try {
      await client.connect();
      await client.end();
      return;
    } catch {
      await client.end().catch(() => {});
    }
    if (Date.now() > deadline) throw new Error(`postgres did not accept connections within ${START_TIMEOUT_MS} ms:\n${log()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Creates and starts a server; it is destroyed after the test file at the latest. */
export async function startPostgres(): Promise<PostgresServer> {
  const identity = serverIdentity();
  const dir = mkdtempSync(join(tmpdir(), 'qrelay-pg-'));
  folders.add(dir);
  if (identity !== undefined) chownSync(dir, identity.uid, identity.gid);
  const data = join(dir, 'data');
  const init = spawnSync(binary('initdb'), ['-D', data, '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8', '--locale', 'C'], {
    ...identity,
    cwd: dir,
    encoding: 'utf8',
    timeout: START_TIMEOUT_MS,
  });
  if (init.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    folders.delete(dir);
    throw new Error(`initdb failed (${init.status ?? init.signal}): ${init.stderr}${init.error?.message ?? ''}`);
  }

  let child: ChildProcess | undefined;
  let stderr = '';
  const clients: pg.Client[] = [];
  const server: PostgresServer = {
    dir,
    conninfo: `host=${dir} dbname=postgres user=postgres`,
    log: () => stderr,
    psqlErrors: (sql) =>
      spawnSync(binary('psql'), ['-X', '-q', '-h', dir, '-U', 'postgres', '-d', 'postgres', '-c', sql], {
        encoding: 'utf8',
        env: { ...process.env, PGCLIENTENCODING: 'UTF8' },
        timeout: START_TIMEOUT_MS,
      }).stderr,
    client: async () => {
      const client = new pg.Client({ host: dir, user: 'postgres', database: 'postgres' });
      client.on('error', () => {});
      await client.connect();
      clients.push(client);
      return client;
    },
    start: async () => {
      const started = spawn(binary('postgres'), ['-D', data, '-k', dir, '-c', 'listen_addresses=', '-c', 'fsync=off', '-c', 'max_connections=30'], {
        ...identity,
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      child = started;
      running.add(started);
      started.on('exit', () => running.delete(started));
      started.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
      await waitUntilAccepting(dir, started, () => stderr);
    },
    stop: async () => {
      const stopping = child;
      child = undefined;
      if (stopping === undefined || stopping.exitCode !== null || stopping.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => stopping.once('exit', () => resolve()));
      stopping.kill('SIGINT'); // fast shutdown
      const timer = setTimeout(() => stopping.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    },
    destroy: async () => {
      servers.delete(server);
      for (const client of clients.splice(0)) await client.end().catch(() => {});
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
      folders.delete(dir);
    },
  };
  servers.add(server);
  try {
    await server.start();
  } catch (e) {
    await server.destroy();
    throw e;
  }
  return server;
}
