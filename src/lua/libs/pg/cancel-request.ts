// The protocol-level cancel request libpq's PQcancel sends: a separate,
// short-lived connection to the server carrying the backend's process id
// and secret key (no authentication).  The pg package keeps both on the
// client but offers no supported way to send the request on its own.
import { connect } from 'node:net';
import { PG_CANCEL_TIMEOUT_MS } from '../../../timeouts.js';
import type { Endpoint } from './client-config.js';

/** CancelRequest code (1234 << 16 | 5678). */
const CANCEL_REQUEST_CODE = 80877102;

export interface BackendKey {
  readonly processID: number;
  readonly secretKey: number;
}

/** Best effort, as PQcancel: whether the server acts on it shows in the query's result. */
export function sendCancelRequest(endpoint: Endpoint, key: BackendKey): void {
  const packet = Buffer.alloc(16);
  packet.writeInt32BE(16, 0);
  packet.writeInt32BE(CANCEL_REQUEST_CODE, 4);
  packet.writeInt32BE(key.processID, 8);
  packet.writeInt32BE(key.secretKey, 12);
  const socket = endpoint.kind === 'socket' ? connect({ path: endpoint.path }) : connect({ host: endpoint.address ?? endpoint.host, port: endpoint.port });
  socket.setTimeout(PG_CANCEL_TIMEOUT_MS, () => socket.destroy());
  socket.on('error', () => socket.destroy());
  socket.on('connect', () => socket.end(packet));
  socket.resume();
}
