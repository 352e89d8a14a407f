// The downstream QMQP server of the relay benchmarks, run as its own process
// (so it does not share an event loop with the load generator): accepts every
// complete request with `Kok` and counts them.
//   node --import tsx bench/sink.ts SOCKET_PATH
// Prints `ready` once listening; on SIGTERM prints {"mails":N} and exits.
import { createServer } from 'node:net';

const path = process.argv[2];
if (path === undefined) {
  process.stderr.write('usage: sink.ts SOCKET_PATH\n');
  process.exit(2);
}

const OK = Buffer.from('3:Kok,');
// A wrong request must not pass as a relayed mail: it gets an answer no bench accepts.
const BAD = Buffer.from('12:Dbad request,');
const COMMA = 0x2c;
const HEADER_MAX = 21; // up to 20 digits and the colon

let mails = 0;

const server = createServer((socket) => {
  // Only the outer netstring's header is parsed; the payload is counted, not kept.
  let header = '';
  let total = -1;
  let received = 0;
  socket.on('error', () => {});
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (total < 0) {
      header += chunk.toString('latin1', 0, Math.min(chunk.length, HEADER_MAX - header.length));
      const colon = header.indexOf(':');
      if (colon < 0) {
        if (header.length >= HEADER_MAX) socket.end(BAD);
        return;
      }
      total = colon + 1 + Number(header.slice(0, colon)) + 1;
    }
    if (received < total) return;
    const complete = received === total && chunk[chunk.length - 1] === COMMA;
    if (complete) mails++;
    socket.end(complete ? OK : BAD);
  });
});

server.listen(path, () => process.stdout.write('ready\n'));
process.once('SIGTERM', () => {
  server.close(); // also removes the socket file
  process.stdout.write(`${JSON.stringify({ mails })}\n`, () => process.exit(0));
});
