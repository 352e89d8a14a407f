// A QMQP client and a downstream QMQP server for tests, on real Unix sockets.
import { connect, createServer, type Server, type Socket } from 'node:net';

export function netstring(payload: Buffer | string): Buffer {
  const bytes = typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload;
  return Buffer.concat([Buffer.from(`${bytes.length}:`), bytes, Buffer.from(',')]);
}

/** The body of a QMQP request (without the outer netstring). */
export function qmqpBody(message: Buffer | string, sender: string, recipients: readonly string[]): Buffer {
  return Buffer.concat([netstring(message), netstring(sender), ...recipients.map((r) => netstring(r))]);
}

/** A complete QMQP request. */
export function qmqpRequest(message: Buffer | string, sender: string, recipients: readonly string[]): Buffer {
  return netstring(qmqpBody(message, sender, recipients));
}

export interface Exchange {
  /** All bytes the server sent before closing. */
  readonly response: Buffer;
  /** How the connection ended: EOF or a reset. */
  readonly ending: 'eof' | 'reset';
}

/** Connects, writes `data` (chunks written with a pause between them), reads until EOF. */
export function exchange(path: string, data: Buffer | readonly Buffer[], options: { pauseMs?: number; halfClose?: boolean } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path, allowHalfOpen: true });
    const chunks: Buffer[] = [];
    socket.on('data', (d: Buffer) => chunks.push(d));
    socket.on('end', () => {
      resolve({ response: Buffer.concat(chunks), ending: 'eof' });
      socket.destroy();
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (e.code === 'ECONNRESET' || e.code === 'EPIPE') resolve({ response: Buffer.concat(chunks), ending: 'reset' });
      else reject(e);
    });
    socket.on('connect', async () => {
      const pieces = Buffer.isBuffer(data) ? [data] : data;
      for (const piece of pieces) {
        if (socket.destroyed) return;
        socket.write(piece);
        if (options.pauseMs) await new Promise((r) => setTimeout(r, options.pauseMs));
      }
      if (options.halfClose) socket.end();
    });
  });
}

/** Sends a request and returns the response as a latin1 string. */
export async function send(path: string, request: Buffer): Promise<string> {
  return (await exchange(path, request)).response.toString('latin1');
}

export interface RecordedRequest {
  readonly bytes: Buffer;
}

export interface DownstreamServer {
  /** The Unix socket path, or `host:port` (`[host]:port` for IPv6) for TCP: the address for `m:connect`. */
  readonly path: string;
  readonly requests: Buffer[];
  readonly server: Server;
  /** How many connections it accepted. */
  connections(): number;
  close(): Promise<void>;
}

/** Where a test server listens: a Unix socket path, or a TCP host and port (0: any free port). */
export type ListenAt = string | { readonly host: string; readonly port: number };

/**
 * A QMQP server on `at`: reads one complete request (outer netstring) per
 * connection and answers with `answer(request)` (raw bytes, or undefined to
 * keep the connection open without answering).
 */
export function downstreamServer(at: ListenAt, answer: (request: Buffer, socket: Socket) => Buffer | undefined): Promise<DownstreamServer> {
  const requests: Buffer[] = [];
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let data = Buffer.alloc(0);
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const colon = data.indexOf(':');
      if (colon < 0) return;
      const length = Number(data.subarray(0, colon).toString());
      if (data.length < colon + 1 + length + 1) return;
      requests.push(data);
      const reply = answer(data, socket);
      if (reply !== undefined) socket.end(reply);
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const listening = (): void => {
      const tcp = server.address();
      const path =
        typeof at === 'string' || tcp === null || typeof tcp === 'string'
          ? String(at)
          : tcp.family === 'IPv6'
            ? `[${tcp.address}]:${tcp.port}`
            : `${tcp.address}:${tcp.port}`;
      resolve({
        path,
        requests,
        server,
        connections: () => connections,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      });
    };
    if (typeof at === 'string') server.listen(at, listening);
    else server.listen(at.port, at.host, listening);
  });
}
