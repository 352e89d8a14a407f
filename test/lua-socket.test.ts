// The `socket` library (docs/libraries.md) run by the real engine
// against real servers: a Python program (not Node, whose abstract socket
// names are padded) serving stream, datagram and seqpacket sockets on a
// path and on an abstract name, and Node TCP servers on 127.0.0.1 and ::1.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { waitFor } from './helpers/daemon.js';
import { runLua } from './helpers/run-lua.js';

// Prints `ready`, then one line per event: `data <hex>` for each datagram or
// seqpacket message, `stream <hex>` for a whole stream connection (at its
// end), `eof` when a seqpacket connection ends.  Quits when stdin closes.
const PYTHON_SERVER = String.raw`
import os, selectors, socket, sys
kind, where = sys.argv[1], sys.argv[2]
types = {'stream': socket.SOCK_STREAM, 'dgram': socket.SOCK_DGRAM, 'seqpacket': socket.SOCK_SEQPACKET}
server = socket.socket(socket.AF_UNIX, types[kind])
server.bind('\0' + where[1:] if where.startswith('@') else where)
if kind != 'dgram':
    server.listen(16)
sel = selectors.DefaultSelector()
sel.register(server, selectors.EVENT_READ, 'server')
sel.register(sys.stdin, selectors.EVENT_READ, 'stdin')
streams = {}
def say(line):
    sys.stdout.write(line + '\n')
    sys.stdout.flush()
say('ready')
while True:
    for key, _ in sel.select(30):
        if key.data == 'stdin':
            if not sys.stdin.buffer.read1(4096):
                sys.exit(0)
        elif key.data == 'server' and kind == 'dgram':
            say('data ' + server.recv(1 << 20).hex())
        elif key.data == 'server':
            conn, _ = server.accept()
            streams[conn] = b''
            sel.register(conn, selectors.EVENT_READ, 'conn')
        else:
            conn = key.fileobj
            chunk = conn.recv(1 << 20)
            if kind == 'seqpacket' and chunk:
                say('data ' + chunk.hex())
            elif chunk:
                streams[conn] += chunk
            else:
                say('eof' if kind == 'seqpacket' else 'stream ' + streams[conn].hex())
                sel.unregister(conn)
                conn.close()
`;

interface PythonServer {
  readonly address: string;
  /** Lines printed so far (after `ready`). */
  readonly lines: string[];
  /** Waits until at least `n` lines arrived. */
  waitForLines(n: number): Promise<string[]>;
  stop(): Promise<void>;
}

async function startPythonServer(kind: 'stream' | 'dgram' | 'seqpacket', address: string): Promise<PythonServer> {
  const child: ChildProcess = spawn('python3', ['-c', PYTHON_SERVER, kind, address], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let ready = false;
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const complete = buffered.split('\n');
    buffered = complete.pop()!;
    for (const line of complete) {
      if (line === 'ready') ready = true;
      else lines.push(line);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await waitFor(() => ready, 10_000, `python ${kind} server on ${address}`);
  return {
    address,
    lines,
    waitForLines: async (n) => {
      await waitFor(() => lines.length >= n, 5_000, `${n} lines from the ${kind} server`);
      return lines;
    },
    stop: async () => {
      child.stdin!.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    },
  };
}

function hex(s: string): string {
  return Buffer.from(s, 'latin1').toString('hex');
}

/** Bytes that a text-based bridge would mangle. */
const BINARY = '\x00\x80\xff\xc3\x28 end';

describe('socket', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'qrelay-socket-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const kind of ['stream', 'dgram', 'seqpacket'] as const) {
    for (const place of ['path', 'abstract'] as const) {
      it(`connects a ${kind} socket to a ${place} and sends binary data`, async () => {
        const address = place === 'path' ? join(dir, `${kind}.sock`) : `@qrelay-test-${kind}-${process.pid}`;
        const server = await startPythonServer(kind, address);
        try {
          const options = kind === 'stream' ? '' : `, {type = '${kind}'}`;
          const lines = await runLua(`
            local s = assert(socket:connect(ADDRESS${options}))
            emit(s:send(DATA))
            emit(s:send('second'))
            emit(s:send(''))
            s:close()
          `, { globals: { ADDRESS: address, DATA: BINARY } });
          assert.deepEqual(lines, [String(BINARY.length), '6', '0']);
          const expected =
            kind === 'stream' ? [`stream ${hex(BINARY + 'second')}`] : [`data ${hex(BINARY)}`, `data ${hex('second')}`, ...(kind === 'seqpacket' ? ['eof'] : [])];
          assert.deepEqual(await server.waitForLines(expected.length), expected);
        } finally {
          await server.stop();
        }
      });
    }
  }

  it('cuts DATA with END first, then START', async () => {
    const server = await startPythonServer('dgram', join(dir, 'positions.sock'));
    try {
      const sends: [string, string][] = [
        ["'hello', -2, 4", 'll'],
        ["'hello', 2", 'ello'],
        ["'hello', -1", 'o'],
        ["'hello', -5", 'hello'],
        ["'hello', 1, -1", 'hello'],
        ["'hello', 1, -2", 'hell'],
        ["'hello', 5, 5", 'o'],
        ["'hello', '2', 3.9", 'el'],
        ['12345, 2, 3', '23'],
      ];
      const lines = await runLua(`
        local s = assert(socket:connect(ADDRESS, {type = 'dgram'}))
        ${sends.map(([args]) => `emit(s:send(${args}))`).join('\n')}
        for _, args in ipairs({ {'hello', 0}, {'hello', 6}, {'hello', -6}, {'hello', 4, 2}, {'hello', 1, 0}, {'hello', 1, 6}, {'', 1} }) do
          emit(pcall_text(s.send, s, table.unpack(args)))
        end
        emit(pcall_text(s.send, s, 'hello', 'x'))
      `, { globals: { ADDRESS: server.address } });
      assert.deepEqual(lines.slice(0, sends.length), sends.map(([, sent]) => String(sent.length)));
      assert.deepEqual(lines.slice(sends.length), [
        "bad argument #2 to 'send' (Bad string position)",
        "bad argument #2 to 'send' (Bad string position)",
        "bad argument #2 to 'send' (Bad string position)",
        "bad argument #2 to 'send' (Bad string position)",
        "bad argument #3 to 'send' (Bad string position)",
        "bad argument #3 to 'send' (Bad string position)",
        "bad argument #2 to 'send' (Bad string position)",
        "bad argument #2 to 'send' (number expected, got string)",
      ]);
      assert.deepEqual(await server.waitForLines(sends.length), sends.map(([, sent]) => `data ${hex(sent)}`));
    } finally {
      await server.stop();
    }
  });

  for (const host of ['127.0.0.1', '::1']) {
    it(`connects over TCP to ${host} (numeric address and address object)`, async () => {
      const received: Buffer[] = [];
      const server: Server = createServer((connection) => {
        const chunks: Buffer[] = [];
        connection.on('data', (d: Buffer) => chunks.push(d));
        connection.on('end', () => received.push(Buffer.concat(chunks)));
      });
      await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
      try {
        const port = (server.address() as { port: number }).port;
        const text = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
        await runLua(`
          local a = assert(socket:connect(TEXT))
          assert(a:send(DATA) == #DATA)
          a:close()
          local b = assert(socket:connect(qmqp_resolve(TEXT)))
          assert(b:send('object') == 6)
          b:close()
        `, { globals: { TEXT: text, DATA: BINARY } });
        await waitFor(() => received.length === 2, 5_000, 'two TCP connections');
        assert.deepEqual(received.map((b) => b.toString('latin1')).sort(), [BINARY, 'object'].sort());
      } finally {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });
  }

  it('returns nil and the system error for failed connects and sends', async () => {
    const server = await startPythonServer('stream', join(dir, 'stream-only.sock'));
    try {
      const lines = await runLua(`
        emit(socket:connect(DIR .. '/missing.sock'))
        emit(socket:connect('127.0.0.1'))
        emit(socket:connect(STREAM_ONLY, {type = 'dgram'}))
        local s = assert(socket:connect(STREAM_ONLY))
        s:close()
        emit(s:send('after close'))
        s:close()
      `, { globals: { DIR: dir, STREAM_ONLY: server.address } });
      assert.deepEqual(lines, [
        'nil\tNo such file or directory',
        'nil\tConnection refused',
        'nil\tProtocol wrong type for socket',
        'nil\tBad file descriptor',
      ]);
    } finally {
      await server.stop();
    }
  });

  it('raises errors for addresses, options and argument counts', async () => {
    const server = await startPythonServer('stream', join(dir, 'errors.sock'));
    try {
      const lines = await runLua(`
        emit(pcall_text(socket.connect, socket))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', {}, 3))
        emit(pcall_text(socket.connect, socket, 'localhost:1234'))
        emit(pcall_text(socket.connect, socket, '1.2.3.4 x'))
        emit(pcall_text(socket.connect, socket, nil))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', 5))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', nil))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', {[1] = 'stream'}))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', {kind = 'stream'}))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', {type = true}))
        emit(pcall_text(socket.connect, socket, '127.0.0.1', {type = 'raw'}))
        emit(pcall_text(socket.connect, socket, 'localhost', {type = 'raw'}))
        local s = assert(socket:connect(ADDRESS, {type = 'stream'}))
        emit(pcall_text(s.send, s))
        emit(pcall_text(s.send, s, 'a', 1, 1, 1))
        emit(pcall_text(s.send, s, {}))
        emit(pcall_text(s.close, s, 1))
        emit(pcall_text(s.send, 'not a socket', 'x'))
        emit(pcall_text(function() s:send() end))
        s:close()
      `, { globals: { ADDRESS: server.address } });
      assert.deepEqual(lines.slice(0, -1), [
        'Not enough parameters',
        'Too many parameters',
        'Failed to resolve "localhost":"1234": Name or service not known',
        'Garbage after host name',
        "bad argument #1 to 'connect' (SocketAddress expected, got nil)",
        "bad argument #2 to 'connect' (table expected, got number)",
        "bad argument #2 to 'connect' (table expected, got nil)",
        'Key is not a string',
        'Unrecognized option',
        "'type' must be a string",
        'Unsupported socket type',
        'Failed to resolve "localhost":"0": Name or service not known',
        'Not enough parameters',
        'Too many parameters',
        "bad argument #1 to 'send' (string expected, got table)",
        'Too many parameters',
        "bad argument #1 to 'send' (socket expected, got string)",
      ]);
      assert.match(lines.at(-1)!, /config\.lua:\d+: Not enough parameters$/);
    } finally {
      await server.stop();
    }
  });

  it('closes the socket when the object is collected', async () => {
    const server = await startPythonServer('stream', join(dir, 'gc.sock'));
    try {
      const before = readdirSync('/proc/self/fd').length;
      await runLua(`
        for i = 1, 20 do
          local s = assert(socket:connect(ADDRESS))
          s:send('gc' .. i)
        end
        collectgarbage()
        collectgarbage()
      `, { globals: { ADDRESS: server.address } });
      const growth = readdirSync('/proc/self/fd').length - before;
      // every connection ended (the server saw EOF) without an explicit close
      const lines = await server.waitForLines(20);
      assert.deepEqual(lines.map((l) => Buffer.from(l.slice('stream '.length), 'hex').toString()).sort(), Array.from({ length: 20 }, (_, i) => `gc${i + 1}`).sort());
      assert.ok(growth < 10, `sockets were closed (${growth} more fds)`);
    } finally {
      await server.stop();
    }
  });
});

describe('socket library primitives', () => {
  it('act only on descriptors the library opened, even when a script digs them out', async () => {
    const { runLua } = await import('./helpers/run-lua.js');
    const out = await runLua(`
      local js
      for i = 1, 10 do
        local name, value = debug.getupvalue(socket.connect, i)
        if name == nil then break end
        if type(value) == 'table' and value.send then js = value end
      end
      if js == nil then
        -- look one level deeper: the primitives table may sit behind a helper
        for _, f in pairs(socket) do
          for i = 1, 10 do
            local name, value = debug.getupvalue(f, i)
            if name == nil then break end
            if type(value) == 'table' and value.send and value.close then js = value end
          end
        end
      end
      emit(js ~= nil)
      emit(select(2, js.send(2, 'x')))
      js.close(2)
    `);
    assert.deepEqual(out, ['true', 'Bad file descriptor']);
    const { fstatSync } = await import('node:fs');
    assert.ok(fstatSync(2), 'fd 2 of this process is still open');
  });
});
