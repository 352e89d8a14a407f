// `connect` over TCP: numeric IPv4 and IPv6 addresses with ports, address
// objects from qmqp_resolve, and a refused port (docs/actions.md).
import assert from 'node:assert/strict';
import { Socket, createServer, type AddressInfo, type Server } from 'node:net';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tcpConnectOptions } from '../src/actions/connect.js';
import { removeDir, startDaemon } from './helpers/daemon.js';
import { netstring, qmqpRequest, send } from './helpers/qmqp.js';

function qmqpTcpServer(host: string): Promise<{ server: Server; port: number; requests: Buffer[] }> {
  const requests: Buffer[] = [];
  const server = createServer((socket) => {
    let data = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('data', (d: Buffer) => {
      data = Buffer.concat([data, d]);
      const colon = data.indexOf(':');
      if (colon > 0 && data.length >= colon + 2 + Number(data.subarray(0, colon).toString())) {
        requests.push(data);
        socket.end(netstring(`Kvia ${host}`));
      }
    });
  });
  return new Promise((resolve) => server.listen(0, host, () => resolve({ server, port: (server.address() as AddressInfo).port, requests })));
}

describe('connect over TCP', () => {
  it('relays to numeric IPv4 and IPv6 addresses with ports, and to resolved address objects', async () => {
    const v4 = await qmqpTcpServer('127.0.0.1');
    const v6 = await qmqpTcpServer('::1');
    const daemon = await startDaemon({
      config: `
local v4, v6 = os.getenv('V4_PORT'), os.getenv('V6_PORT')
local resolved = qmqp_resolve('127.0.0.1:' .. v4)
qmqp_listen(os.getenv('TEST_DIR') .. '/qrelay.sock', function(m)
  local to = m.recipients[1]
  if to:match('^v4@') then return m:connect('127.0.0.1:' .. v4) end
  if to:match('^v6@') then return m:connect('[::1]:' .. v6) end
  if to:match('^object@') then return m:connect(resolved) end
  return m:connect('127.0.0.1:1')
end)`,
      env: { V4_PORT: String(v4.port), V6_PORT: String(v6.port) },
    });
    const sock = join(daemon.dir, 'qrelay.sock');
    const mail = (to: string): Buffer => qmqpRequest('m', 'a@b.c', [to]);
    try {
      assert.equal(await send(sock, mail('v4@x.y')), '14:Kvia 127.0.0.1,');
      assert.equal(await send(sock, mail('v6@x.y')), '8:Kvia ::1,');
      assert.equal(await send(sock, mail('object@x.y')), '14:Kvia 127.0.0.1,');
      assert.equal(await send(sock, mail('refused@x.y')), '15:Zconnect failed,');
      await daemon.waitForStderr(/Failed to connect: Connection refused/);
      assert.match(v4.requests[0]!.toString('latin1'), /,5:a@b.c,6:v4@x.y,,$/);
    } finally {
      assert.equal(await daemon.stop(), 0);
      removeDir(daemon.dir);
      v4.server.close();
      v6.server.close();
    }
  });

  it("gives net.connect options that Node's Socket constructor adds nothing to (one hidden class, not a new one per socket)", () => {
    const options = tcpConnectOptions('127.0.0.1', 628);
    assert.deepEqual(Object.keys(options), Object.keys(tcpConnectOptions('::1', 1)));
    assert.equal(options.host, '127.0.0.1');
    assert.equal(options.port, 628);
    // the values the constructor sets on its copy, so that it only overwrites them
    assert.equal(options.allowHalfOpen, true);
    assert.equal(options.emitClose, false);
    assert.equal(options.autoDestroy, true);
    assert.equal(options.decodeStrings, false);
    const socket = new Socket(options);
    assert.equal(socket.allowHalfOpen, true);
    socket.destroy();
  });
});
