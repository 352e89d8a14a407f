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
  readonly path: string;
  readonly requests: Buffer[];
  readonly server: Server;
  close(): Promise<void>;
}

/**
 * A QMQP server on `path`: reads one complete request (outer netstring) per
 * connection and answers with `answer(request)` (raw bytes, or undefined to
 * keep the connection open without answering).
 */
export function downstreamServer(path: string, answer: (request: Buffer, socket: Socket) => Buffer | undefined): Promise<DownstreamServer> {
  const requests: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
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
  return new Promise((resolve) => {
    server.listen(path, () =>
      resolve({
        path,
        requests,
        server,
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}
