// Address strings of the Lua API (docs/configuration.md): `/path`, `@abstract`,
// `host[:port]` with the original's host syntax, resolved numerically for
// actions and with DNS by the startup resolvers.
import { AI_ADDRCONFIG, AI_NUMERICHOST, formatIp, getAddrInfo, getAddrInfoAsync, type NativeAddress } from '../native/linux.js';

export type SocketAddress = NativeAddress;

/** An address-string failure; the message is the original's text. */
export class AddressError extends Error {}

export const DefaultPort = { qmqp: 628, pond: 5479, control: 5478, socket: 0 } as const;

interface HostPort {
  readonly host: string;
  readonly port: string | undefined;
}

const HOST_CHARS = /^[A-Za-z0-9\-.*:]*/;
const IPV6_CHARS = /^[0-9A-Fa-f:.]*(%[A-Za-z0-9\-._]+)?/;

/** Splits `host[:port]` with the rules of docs/configuration.md */
export function splitHostPort(s: string): HostPort {
  let host: string;
  let rest: string;
  if (s.startsWith('[')) {
    const close = s.indexOf(']');
    if (close <= 1) throw new AddressError('Failed to extract host name');
    host = s.slice(1, close);
    rest = s.slice(close + 1);
  } else if (s.startsWith('::')) {
    host = IPV6_CHARS.exec(s)![0];
    rest = s.slice(host.length);
    if (rest !== '') throw new AddressError('Garbage after host name');
    return checkLength({ host, port: undefined });
  } else {
    const run = HOST_CHARS.exec(s)![0];
    if (run === '') throw new AddressError('Failed to extract host name');
    const colons = run.split(':').length - 1;
    if (colons >= 2) {
      host = IPV6_CHARS.exec(s)![0];
      if (s.slice(host.length) !== '') throw new AddressError('Garbage after host name');
      return checkLength({ host, port: undefined });
    }
    if (run.length < s.length) throw new AddressError('Garbage after host name');
    const colon = run.indexOf(':');
    if (colon < 0) return checkLength({ host: run, port: undefined });
    return checkLength({ host: run.slice(0, colon), port: run.slice(colon + 1) });
  }
  if (rest === '') return checkLength({ host, port: undefined });
  if (!rest.startsWith(':')) throw new AddressError('Garbage after host name');
  return checkLength({ host, port: rest.slice(1) });
}

function checkLength(hp: HostPort): HostPort {
  if (hp.host.length >= 256) throw new AddressError('Host name too long');
  return hp;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function localAddress(s: string): SocketAddress | undefined {
  if (s.startsWith('/')) return { family: 'unix', name: Buffer.from(s, 'latin1'), abstract: false };
  if (s.startsWith('@')) return { family: 'unix', name: Buffer.from(s.slice(1), 'latin1'), abstract: true };
  return undefined;
}

/** What getaddrinfo is asked for a `host[:port]` string. */
interface Lookup {
  readonly host: string;
  readonly service: string;
}

function lookupOf(s: string, defaultPort: number): Lookup {
  const { host, port } = splitHostPort(s);
  return { host, service: port ?? String(defaultPort) };
}

/**
 * The resolver's answer as an address list: the address the original picks
 * (the first IPv6 one, else the first) first, then the others in the
 * resolver's order.
 */
function addressList(lookup: Lookup, found: readonly SocketAddress[] | string): SocketAddress[] {
  const what = `${quote(lookup.host)}:${quote(lookup.service)}`;
  if (typeof found === 'string') throw new AddressError(`Failed to resolve ${what}: ${found}`);
  const chosen = found.findIndex((a) => a.family === 6);
  if (found.length === 0) throw new AddressError(`Failed to resolve ${what}: No address`);
  if (chosen <= 0) return [...found];
  return [found[chosen]!, ...found.slice(0, chosen), ...found.slice(chosen + 1)];
}

function resolveList(s: string, defaultPort: number, flags: number, type: 'stream' | 'dgram'): SocketAddress[] {
  const local = localAddress(s);
  if (local !== undefined) return [local];
  const lookup = lookupOf(s, defaultPort);
  return addressList(lookup, getAddrInfo(lookup.host, lookup.service, flags, type));
}

/** A numeric address string (actions, `log_server`, `socket:connect`). */
export function parseNumericAddress(s: string, defaultPort: number, type: 'stream' | 'dgram' = 'stream'): SocketAddress {
  return resolveList(s, defaultPort, AI_NUMERICHOST, type)[0]!;
}

/**
 * A startup resolver (`qmqp_resolve` etc.): host names allowed.  Every
 * address of the name, the one the original would pick first.
 */
export function resolveAddresses(s: string, defaultPort: number, type: 'stream' | 'dgram'): SocketAddress[] {
  return resolveList(s, defaultPort, AI_ADDRCONFIG, type);
}

/** The first of resolveAddresses(): the one address the original keeps. */
export function resolveAddress(s: string, defaultPort: number, type: 'stream' | 'dgram'): SocketAddress {
  return resolveAddresses(s, defaultPort, type)[0]!;
}

/** Whether resolving `s` again may give other addresses (a host name, not a path or a numeric address). */
export function isHostName(s: string): boolean {
  if (localAddress(s) !== undefined) return false;
  try {
    return typeof getAddrInfo(splitHostPort(s).host, '0', AI_NUMERICHOST, 'stream') === 'string';
  } catch {
    return false;
  }
}

/** resolveAddresses() without blocking the event loop (the lookup runs on a worker thread). */
export async function resolveAddressesAsync(s: string, defaultPort: number, type: 'stream' | 'dgram'): Promise<SocketAddress[]> {
  const local = localAddress(s);
  if (local !== undefined) return [local];
  const lookup = lookupOf(s, defaultPort);
  return addressList(lookup, await getAddrInfoAsync(lookup.host, lookup.service, AI_ADDRCONFIG, type));
}

function isV4Mapped(a: Buffer): boolean {
  for (let i = 0; i < 10; i++) if (a[i] !== 0) return false;
  return a[10] === 0xff && a[11] === 0xff;
}

/** `tostring()` of an address object (docs/configuration.md). */
export function formatAddress(a: SocketAddress): string {
  if (a.family === 'unix') {
    const name = a.name.toString('latin1');
    return a.abstract ? '@' + name.replaceAll('\0', '@') : name;
  }
  let text: string;
  if (a.family === 6 && isV4Mapped(a.address)) text = formatIp(4, a.address.subarray(12));
  else if (a.family === 6) text = `[${formatIp(6, a.address)}]`;
  else text = formatIp(4, a.address);
  if (a.port === 0) return a.family === 6 && !isV4Mapped(a.address) ? text.slice(1, -1) : text;
  return `${text}:${a.port}`;
}

/** The host text Node's net/dgram modules accept for an IP address. */
export function ipHost(a: SocketAddress & { family: 4 | 6 }): string {
  const text = formatIp(a.family, a.address);
  return a.family === 6 && a.scopeId !== 0 ? `${text}%${a.scopeId}` : text;
}
