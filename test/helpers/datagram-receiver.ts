// Datagram receivers standing in for a Pond log server: UDP over IPv4/IPv6
// (node:dgram) and Unix datagram sockets (bound through koffi, since
// node:dgram cannot do Unix sockets), each collecting what arrives.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { rmSync } from 'node:fs';
import koffi from 'koffi';
import { closeFd, recvNonBlocking, unixSockaddr } from '../../src/native/linux.js';

export interface DatagramReceiver {
  /** The value for `log_server` (a Lua string's contents). */
  readonly logServer: string;
  readonly datagrams: Buffer[];
  /** The next datagram not yet taken, waiting at most `ms`. */
  next(ms?: number): Promise<Buffer>;
  close(): Promise<void>;
}

function collector(poll?: () => void): Pick<DatagramReceiver, 'datagrams' | 'next'> {
  const datagrams: Buffer[] = [];
  let taken = 0;
  return {
    datagrams,
    next: async (ms = 5_000) => {
      const deadline = Date.now() + ms;
      for (;;) {
        poll?.();
        if (datagrams.length > taken) return datagrams[taken++]!;
        if (Date.now() > deadline) throw new Error(`no datagram within ${ms} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
}

export function udpReceiver(family: 4 | 6): Promise<DatagramReceiver> {
  const socket: UdpSocket = createSocket(family === 4 ? 'udp4' : 'udp6');
  const host = family === 4 ? '127.0.0.1' : '::1';
  const { datagrams, next } = collector();
  socket.on('message', (msg) => datagrams.push(msg));
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    socket.bind(0, host, () => {
      const port = socket.address().port;
      resolve({
        logServer: family === 4 ? `${host}:${port}` : `[${host}]:${port}`,
        datagrams,
        next,
        close: () => new Promise<void>((r) => socket.close(() => r())),
      });
    });
  });
}

const libc = koffi.load('libc.so.6');
const socketCall = libc.func('int socket(int, int, int)');
const bindCall = libc.func('int bind(int, const void *, uint32_t)');
const AF_UNIX = 1;
const SOCK_DGRAM_CLOEXEC_NONBLOCK = 2 | 0o2000000 | 0o4000;

/** A Unix datagram socket on `path`, or on the abstract `name` when `abstract`. */
export function unixReceiver(name: string, abstract = false): DatagramReceiver {
  const fd = socketCall(AF_UNIX, SOCK_DGRAM_CLOEXEC_NONBLOCK, 0) as number;
  if (fd < 0) throw new Error(`socket() failed: errno ${koffi.errno()}`);
  const address = unixSockaddr(Buffer.from(name, 'latin1'), abstract);
  if ((bindCall(fd, address, address.length) as number) < 0) {
    const errno = koffi.errno();
    closeFd(fd);
    throw new Error(`bind() failed: errno ${errno}`);
  }
  let open = true;
  const { datagrams, next } = collector(() => {
    for (let i = 0; open && i < 100; i++) {
      const datagram = recvNonBlocking(fd, 65_536);
      if (datagram === undefined) break;
      datagrams.push(datagram);
    }
  });
  return {
    logServer: abstract ? `@${name}` : name,
    datagrams,
    next,
    close: async () => {
      if (!open) return;
      open = false;
      closeFd(fd);
      if (!abstract) rmSync(name, { force: true });
    },
  };
}
