// JavaScript side of the `socket` library: numeric address strings
// (default port 0), blocking connect and send, close.
import { connectSocket, sendOn, SystemError, systemErrorText, type SocketTypeName } from '../../native/linux.js';
import { DefaultPort, parseNumericAddress, type SocketAddress } from '../../protocol/socket-address.js';
import type { LibraryContext, LuaLibrary } from '../library.js';
import { DRY_RUN_REFUSAL } from '../errors.js';
import { LuaError, type LuaArg, type LuaPushable } from '../lua-values.js';
import { bytesOf } from '../library-support/lua-bytes.js';
import { OwnedFds } from '../library-support/owned-fds.js';

/** An address string; its errors are raised in Lua without a position. */
function parseAddress(text: LuaArg): SocketAddress {
  try {
    return parseNumericAddress(String(text), DefaultPort.socket);
  } catch (e) {
    throw new LuaError(e instanceof Error ? e.message : String(e));
  }
}

/** nil and the bare strerror text, as the original returns system errors. */
function systemFailure(e: unknown): LuaPushable[] {
  if (e instanceof SystemError) return [undefined, systemErrorText(e)];
  throw e;
}

export const socketLibrary: LuaLibrary = {
  name: 'socket',
  primitives: ({ host }: LibraryContext) => {
    const fds = new OwnedFds();
    return {
      check_address: ([text]) => {
        parseAddress(text);
      },
      connect: ([kind, value, type]): LuaPushable[] => {
        const address = kind === 'string' ? parseAddress(value) : host.addressById(Number(value));
        if (address === undefined) throw new LuaError('Unknown address object');
        try {
          return [fds.add(connectSocket(address, String(type) as SocketTypeName, true).fd)];
        } catch (e) {
          return systemFailure(e);
        }
      },
      send: ([fd, data]): LuaPushable[] => {
        const own = fds.owned(fd);
        if (own === undefined) return [undefined, OwnedFds.badDescriptor];
        try {
          return [sendOn(own, bytesOf(data), false)];
        } catch (e) {
          return systemFailure(e);
        }
      },
      close: ([fd]) => fds.close(fd),
    };
  },
  // connecting a datagram socket sends nothing (and fails as in the daemon); a stream connection is refused
  dryRun: ({ host }, real) => ({
    connect: (args) => {
      if (args[2] === 'dgram') return real.connect!(args);
      host.refuse('socket.connect');
      return [undefined, DRY_RUN_REFUSAL];
    },
    send: () => {
      host.refuse('socket.send');
      return [undefined, DRY_RUN_REFUSAL];
    },
  }),
};
