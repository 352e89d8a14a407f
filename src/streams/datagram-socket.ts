// A connected, non-blocking datagram socket for fire-and-forget records
// (docs/pond.md): UDP over IPv4/IPv6 or a Unix datagram socket.  All
// families go through the native layer: Node's dgram cannot do Unix
// sockets, and its connect() is asynchronous, while a failure here must
// abort startup synchronously.
import { closeFd, connectSocket, sendOn, SystemError } from '../native/linux.js';
import { formatAddress, type SocketAddress } from '../protocol/socket-address.js';

export class ConnectedDatagramSocket {
  private constructor(private fd: number) {}

  /** Throws an Error `Failed to connect to ADDRESS: …` (or `Failed to create socket: …`). */
  static connect(address: SocketAddress): ConnectedDatagramSocket {
    try {
      // UDP and Unix datagram connects finish at once, even non-blocking.
      return new ConnectedDatagramSocket(connectSocket(address, 'dgram', false).fd);
    } catch (e) {
      if (e instanceof SystemError && e.message.startsWith('Failed to connect')) {
        throw new SystemError(`Failed to connect to ${formatAddress(address)}`, e.errno);
      }
      throw e;
    }
  }

  /** One send(MSG_DONTWAIT | MSG_NOSIGNAL); throws SystemError with the errno. */
  send(datagram: Buffer): void {
    if (this.fd < 0) return;
    sendOn(this.fd, datagram, true);
  }

  close(): void {
    if (this.fd >= 0) closeFd(this.fd);
    this.fd = -1;
  }
}

