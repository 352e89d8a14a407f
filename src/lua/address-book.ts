// The address objects of the Lua API (docs/configuration.md): what a resolver
// call gave (every address of a name, the one the original would pick
// first), kept under the id Lua holds, and looked up again on request
// (after `reload()` on SIGHUP) without blocking mail.  Also the cache of
// numeric address strings that actions name, and the primitives of
// runtime/addresses.lua.
import {
  DefaultPort,
  formatAddress,
  isHostName,
  parseNumericAddress,
  resolveAddresses,
  resolveAddressesAsync,
  type SocketAddress,
} from '../protocol/socket-address.js';
import { LuaError, type BridgedFunction } from './lua-values.js';

/** Which resolver made an address object (its default port and socket type). */
export type ResolverKind = 'qmqp' | 'log' | 'control';

const RESOLVERS = {
  qmqp: [DefaultPort.qmqp, 'stream'],
  log: [DefaultPort.pond, 'dgram'],
  control: [DefaultPort.control, 'dgram'],
} as const;

const NUMERIC_CACHE_LIMIT = 1024;

interface Entry {
  addresses: readonly SocketAddress[];
  /** For address objects made from host names: how to look them up again. */
  readonly name?: { readonly kind: ResolverKind; readonly text: string };
}

function describeList(addresses: readonly SocketAddress[]): string {
  return addresses.map(formatAddress).join(' ');
}

function sameList(a: readonly SocketAddress[], b: readonly SocketAddress[]): boolean {
  return a.length === b.length && a.every((x, i) => formatAddress(x) === formatAddress(b[i]!));
}

export class AddressBook {
  private readonly entries: Entry[] = [];
  private readonly numeric = new Map<string, SocketAddress>();

  /** A resolver call (`qmqp_resolve(text)` …): resolves now (throws AddressError) and returns the new object's id. */
  resolve(kind: ResolverKind, text: string): number {
    const [port, type] = RESOLVERS[kind];
    const addresses = resolveAddresses(text, port, type);
    this.entries.push(isHostName(text) ? { addresses, name: { kind, text } } : { addresses });
    return this.entries.length - 1;
  }

  /** Every address of object `id`, the original's choice first. */
  addresses(id: number): readonly SocketAddress[] | undefined {
    return this.entries[id]?.addresses;
  }

  /** The one address of object `id` that single-address uses (log_server, sockets) take. */
  first(id: number): SocketAddress | undefined {
    return this.entries[id]?.addresses[0];
  }

  /** A numeric address string of an action (default port 628), parsed once. */
  numericAddress(text: string): SocketAddress {
    let address = this.numeric.get(text);
    if (address === undefined) {
      address = parseNumericAddress(text, DefaultPort.qmqp);
      if (this.numeric.size >= NUMERIC_CACHE_LIMIT) this.numeric.clear();
      this.numeric.set(text, address);
    }
    return address;
  }

  /**
   * Looks every host name up again, all at once on worker threads; each
   * object made from a name gets the new list when its lookup is done.  A
   * failed lookup keeps the old list.  Resolves with a log line for each
   * change and each failure.
   */
  async refresh(): Promise<string[]> {
    const byName = new Map<string, Entry[]>();
    for (const entry of this.entries) {
      if (entry.name === undefined) continue;
      const key = `${entry.name.kind}_resolve(${JSON.stringify(entry.name.text)})`;
      const group = byName.get(key);
      if (group === undefined) byName.set(key, [entry]);
      else group.push(entry);
    }
    const lines = await Promise.all(
      [...byName].map(async ([what, entries]): Promise<string | undefined> => {
        const { kind, text } = entries[0]!.name!;
        const [port, type] = RESOLVERS[kind];
        const old = entries[0]!.addresses;
        let fresh: SocketAddress[];
        try {
          fresh = await resolveAddressesAsync(text, port, type);
        } catch (e) {
          return `${what}: ${(e as Error).message}; keeping ${describeList(old)}`;
        }
        if (sameList(old, fresh)) return undefined;
        for (const entry of entries) entry.addresses = fresh;
        return `${what}: now ${describeList(fresh)} (was ${describeList(old)})`;
      }),
    );
    return lines.filter((line): line is string => line !== undefined);
  }
}

/** An address error as a Lua error (no position: the text is the message). */
function asLuaError<T>(f: () => T): T {
  try {
    return f();
  } catch (e) {
    throw new LuaError((e as Error).message);
  }
}

/** The primitives of address objects (runtime/addresses.lua) and of `connect`'s address strings. */
export function addressPrimitives(book: AddressBook): Record<string, BridgedFunction> {
  return {
    address_tostring: ([id]) => formatAddress(book.first(Number(id))!),
    resolve: ([kind, text]) => asLuaError(() => book.resolve(kind as ResolverKind, String(text))),
    check_address: ([text]) => {
      asLuaError(() => book.numericAddress(String(text)));
    },
  };
}
