// The plain-Node floor of `npm run bench`: what relaying costs in Node's socket
// layer alone.  No Lua, no RxJS, no checks: reads one QMQP request, prepends
// a Received-style header to the message, relays it to SINK, passes the answer back.
//   node bench/floor-relay.mjs LISTEN_SOCKET SINK_SOCKET
import { connect, createServer } from 'node:net';

const [listenPath, sinkPath] = process.argv.slice(2);
const COLON = 0x3a;

function relay(client, chunks) {
  // "N:" (outer netstring) then "M:" (the message's netstring): both lengths grow by the header
  const first = chunks[0];
  const c1 = first.indexOf(COLON);
  const c2 = first.indexOf(COLON, c1 + 1);
  const outer = Number(first.toString('latin1', 0, c1));
  const inner = Number(first.toString('latin1', c1 + 1, c2));
  const header = Buffer.from(`Received: from floor-relay by localhost; ${new Date().toUTCString()}\r\n`);
  const innerHead = `${inner + header.length}:`;
  const outerLength = outer - (c2 - c1) + innerHead.length + header.length;
  const down = connect(sinkPath);
  down.on('error', () => client.destroy());
  down.cork();
  down.write(`${outerLength}:${innerHead}`);
  down.write(header);
  down.write(first.subarray(c2 + 1));
  for (let i = 1; i < chunks.length; i++) down.write(chunks[i]);
  down.uncork();
  down.on('data', (answer) => client.write(answer));
  down.on('end', () => client.end());
}

createServer((client) => {
  const chunks = [];
  let received = 0;
  let total = -1;
  client.on('error', () => {});
  client.on('data', (chunk) => {
    chunks.push(chunk);
    received += chunk.length;
    if (total < 0) total = chunks[0].indexOf(COLON) + 2 + Number(chunks[0].toString('latin1', 0, chunks[0].indexOf(COLON)));
    if (received === total) relay(client, chunks);
  });
}).listen(listenPath);
process.on('SIGTERM', () => process.exit(0));
