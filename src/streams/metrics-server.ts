// The HTTP endpoint Prometheus scrapes (docs/metrics.md): `metrics_listen`
// takes a Unix socket path or a loopback `host:port`; GET /metrics answers
// with the text format of the registry.
import { lstatSync, unlinkSync } from 'node:fs';
import type { Server } from 'node:http';
import { resolve } from 'node:path';
import { removeStale } from './listener.js';

export type MetricsAddress = { readonly kind: 'unix'; readonly path: string } | { readonly kind: 'tcp'; readonly host: string; readonly port: number };

const LOOPBACK = /^(?:localhost|127(?:\.\d{1,3}){3}|::1)$/;

/** The address `metrics_listen` was given, or the error text for the script. */
export function parseMetricsAddress(text: string): MetricsAddress | string {
  if (text.startsWith('/') || text.startsWith('./')) return { kind: 'unix', path: text };
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  if (m === null) return `metrics_listen: '${text}' is neither a socket path (/…) nor host:port`;
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (!LOOPBACK.test(host)) return `metrics_listen: '${host}' is not a loopback address (127.0.0.1, ::1 or localhost); metrics are not meant for the network`;
  if (port < 1 || port > 65535) return `metrics_listen: port ${port} is out of range (1 to 65535)`;
  return { kind: 'tcp', host, port };
}

/**
 * `metrics_listen()` while the config loads: `listen` checks the address
 * and records it (a relative path against the current folder, which is
 * the config's during the load), or returns the error text for the script.
 */
export function metricsListenHandler(): { listen: (text: string) => string | undefined; readonly address: MetricsAddress | undefined } {
  let address: MetricsAddress | undefined;
  return {
    listen: (text) => {
      if (address !== undefined) return 'metrics_listen may be called only once';
      const parsed = parseMetricsAddress(text);
      if (typeof parsed === 'string') return parsed;
      address = parsed.kind === 'unix' ? { kind: 'unix', path: resolve(parsed.path) } : parsed;
      return undefined;
    },
    get address() {
      return address;
    },
  };
}

export function describeMetricsAddress(a: MetricsAddress): string {
  return a.kind === 'unix' ? a.path : a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`;
}

/** What is served: a prom-client Registry, or the sum of the workers' registries. */
export interface MetricsSource {
  metrics(): Promise<string>;
  readonly contentType: string;
}

export interface MetricsServer {
  /** Stops serving; removes the socket file if it is still the one we made. */
  close(): void;
}

/**
 * Starts serving `registry`; rejects with a message naming the address when it cannot listen.
 * (Node's HTTP server is loaded here, only for a config that serves metrics: about 1 MB.)
 */
export async function serveMetrics(address: MetricsAddress, registry: MetricsSource): Promise<MetricsServer> {
  const { createServer } = await import('node:http');
  const server: Server = createServer((request, response) => {
    if (request.method !== 'GET' || (request.url ?? '').split('?')[0] !== '/metrics') {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('metrics are at /metrics\n');
      return;
    }
    registry.metrics().then(
      (text) => response.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (e: unknown) => response.writeHead(500, { 'content-type': 'text/plain' }).end(`${(e as Error).message}\n`),
    );
  });
  const describe = describeMetricsAddress(address);
  let ownFile: { path: string; ino: number } | undefined;
  try {
    if (address.kind === 'unix') removeStale(resolve(address.path), address.path);
    await new Promise<void>((resolveListen, reject) => {
      server.once('error', reject);
      if (address.kind === 'unix') server.listen(address.path, () => resolveListen());
      else server.listen(address.port, address.host, () => resolveListen());
    });
  } catch (e) {
    server.close();
    const message = (e as Error).message.replace(/^Failed to bind to [^:]*: /, '');
    throw new Error(`metrics_listen('${describe}'): ${message}`);
  }
  if (address.kind === 'unix') ownFile = { path: resolve(address.path), ino: lstatSync(address.path).ino };
  server.on('error', () => {
    // accept errors: the next scrape tries again
  });
  return {
    close: () => {
      server.close();
      server.closeAllConnections();
      try {
        if (ownFile !== undefined && lstatSync(ownFile.path).ino === ownFile.ino) unlinkSync(ownFile.path);
      } catch {
        // gone already
      }
    },
  };
}
