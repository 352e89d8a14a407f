// JavaScript side of the `control_client` library: the datagram socket
// (docs/libraries.md) and the packet encoding (src/protocol/control.ts).
import { connectSocket, sendOn, SystemError, systemErrorText, type NativeAddress } from '../../native/linux.js';
import { encodeControlDatagram, encodeControlPacket } from '../../protocol/control.js';
import { DefaultPort, resolveAddress } from '../../protocol/socket-address.js';
import type { LibraryContext, LuaLibrary } from '../library.js';
import { DRY_RUN_REFUSAL } from '../errors.js';
import type { LuaPushable } from '../lua-values.js';
import { bytesOf } from '../library-support/lua-bytes.js';
import { OwnedFds } from '../library-support/owned-fds.js';

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * A non-blocking datagram socket connected to `address`: its fd, or nil and
 * the message.  `describe` names a string address in connect errors.
 */
function openDatagramSocket(fds: OwnedFds, address: NativeAddress, describe: string | undefined): LuaPushable[] {
  try {
    return [fds.add(connectSocket(address, 'dgram', false).fd)];
  } catch (e) {
    if (e instanceof SystemError && describe !== undefined && e.message.startsWith('Failed to connect:')) {
      return [undefined, `Failed to connect to ${describe}: ${systemErrorText(e)}`];
    }
    return [undefined, errorText(e)];
  }
}

export const controlClientLibrary: LuaLibrary = {
  name: 'control_client',
  primitives: ({ host }: LibraryContext) => {
    const fds = new OwnedFds();
    return {
      // host[:port] with DNS (default port 5478), `/path` or `@abstract`
      open_string: ([text]): LuaPushable[] => {
        let address: NativeAddress;
        try {
          address = resolveAddress(String(text), DefaultPort.control, 'dgram');
        } catch (e) {
          return [undefined, errorText(e)];
        }
        return openDatagramSocket(fds, address, String(text));
      },
      open_address: ([id]): LuaPushable[] => {
        const address = host.addressById(Number(id));
        if (address === undefined) return [undefined, 'Unknown address object'];
        return openDatagramSocket(fds, address, undefined);
      },
      packet: ([command, payload]) => encodeControlPacket(Number(command), bytesOf(payload)),
      // true, or nil and `send() failed: …`
      send: ([fd, packets]): LuaPushable[] => {
        const own = fds.owned(fd);
        if (own === undefined) return [undefined, `send() failed: ${OwnedFds.badDescriptor}`];
        try {
          sendOn(own, encodeControlDatagram([bytesOf(packets)]), true);
          return [true];
        } catch (e) {
          return [undefined, errorText(e)];
        }
      },
      close: ([fd]) => fds.close(fd),
    };
  },
  // opening the datagram socket sends nothing; sending is refused
  dryRun: ({ host }) => ({
    send: () => {
      host.refuse('control_client.send');
      return [undefined, `send() failed: ${DRY_RUN_REFUSAL}`];
    },
  }),
};
