// The one place that calls Linux directly (through koffi): everything Node
// lacks — peer credentials, pidfds, exact-length abstract socket names,
// Unix datagram/seqpacket sockets, extended attributes.
import { packageRequire } from '../package-dir.cjs';

// required, not imported: see src/package-dir.cts
const koffi = packageRequire('koffi') as typeof import('koffi');

const libc = koffi.load('libc.so.6');

const AddrInfo = koffi.struct('addrinfo', {
  ai_flags: 'int',
  ai_family: 'int',
  ai_socktype: 'int',
  ai_protocol: 'int',
  ai_addrlen: 'uint32_t',
  ai_addr: 'void *',
  ai_canonname: 'void *',
  ai_next: 'void *',
});

const c = {
  mallocTrim: libc.func('int malloc_trim(uintptr_t)'),
  socket: libc.func('int socket(int, int, int)'),
  bind: libc.func('int bind(int, const void *, uint32_t)'),
  listen: libc.func('int listen(int, int)'),
  connect: libc.func('int connect(int, const void *, uint32_t)'),
  // with caller-owned buffers: no marshalling per call (hot path)
  getsockoptRaw: libc.func('int getsockopt(int, int, int, void *, void *)'),
  setsockopt: libc.func('int setsockopt(int, int, int, const void *, uint32_t)'),
  send: libc.func('intptr_t send(int, const void *, uintptr_t, int)'),
  recv: libc.func('intptr_t recv(int, _Out_ void *, uintptr_t, int)'),
  close: libc.func('int close(int)'),
  strerror: libc.func('const char *strerror(int)'),
  getxattr: libc.func('intptr_t getxattr(const char *, const char *, _Out_ void *, uintptr_t)'),
  getaddrinfo: libc.func('int getaddrinfo(const char *, const char *, const addrinfo *, _Out_ void **)'),
  freeaddrinfo: libc.func('void freeaddrinfo(void *)'),
  gaiStrerror: libc.func('const char *gai_strerror(int)'),
  inetNtop: libc.func('const char *inet_ntop(int, const void *, _Out_ uint8_t *, uint32_t)'),
};

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOL_SOCKET = 1;
const SO_PASSCRED = 16;
const SO_PEERCRED = 17;
const SO_PEERPIDFD = 77;
const SOCK_CLOEXEC = 0o2000000;
const SOCK_NONBLOCK = 0o4000;
const MSG_DONTWAIT = 0x40;
const MSG_NOSIGNAL = 0x4000;
export const EAGAIN = 11;
export const EINPROGRESS = 115;
export const ENOTCONN = 107;

export const SocketType = { stream: 1, dgram: 2, seqpacket: 5 } as const;
export type SocketTypeName = keyof typeof SocketType;

/** A failed system call: `message` is `<prefix>: <strerror>`. */
export class SystemError extends Error {
  constructor(prefix: string, readonly errno: number) {
    super(`${prefix}: ${strerror(errno)}`);
  }
}

export function strerror(errno: number): string {
  return c.strerror(errno) as string;
}

/** The (positive) errno of a failed system call: ours (SystemError) or Node's (negative `errno`). */
export function errnoOf(error: unknown): number | undefined {
  if (error instanceof SystemError) return error.errno;
  const errno = (error as NodeJS.ErrnoException | undefined)?.errno;
  return typeof errno === 'number' && errno !== 0 ? Math.abs(errno) : undefined;
}

/** The strerror text of a failed system call (ours or Node's), else the error's message. */
export function systemErrorText(error: unknown): string {
  const errno = errnoOf(error);
  if (errno !== undefined) return strerror(errno);
  return error instanceof Error ? error.message : String(error);
}

function check(result: number | bigint, prefix: string): number {
  const n = Number(result);
  if (n < 0) throw new SystemError(prefix, koffi.errno());
  return n;
}

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** SO_PEERCRED of a connected Unix socket; undefined unless the pid is > 0. */
const ucred = Buffer.alloc(12);
const ucredLength = Buffer.alloc(4);

export function peerCredentials(fd: number): PeerCredentials | undefined {
  // called once per connection: reuses its buffers (a fresh Buffer and an
  // _Inout_ array cost about 15 µs per call in koffi's marshalling)
  ucredLength.writeUInt32LE(12);
  if (c.getsockoptRaw(fd, SOL_SOCKET, SO_PEERCRED, ucred, ucredLength) < 0) return undefined;
  const pid = ucred.readInt32LE(0);
  if (pid <= 0) return undefined;
  return { pid, uid: ucred.readUInt32LE(4), gid: ucred.readUInt32LE(8) };
}

/** SO_PEERPIDFD: a pidfd pinning the peer process (kernel ≥ 6.5), or undefined. */
const pidfdValue = Buffer.alloc(4);
const pidfdLength = Buffer.alloc(4);

export function peerPidfd(fd: number): number | undefined {
  // reused buffers, as in peerCredentials (once per mail whose policy reads m.cgroup)
  pidfdLength.writeUInt32LE(4);
  if (c.getsockoptRaw(fd, SOL_SOCKET, SO_PEERPIDFD, pidfdValue, pidfdLength) < 0) return undefined;
  const pidfd = pidfdValue.readInt32LE(0);
  return pidfd >= 0 ? pidfd : undefined;
}

/** Returns the C heap's free memory to the kernel (glibc keeps it otherwise). */
export function trimCHeap(): void {
  c.mallocTrim(0);
}

export function closeFd(fd: number): void {
  c.close(fd);
}

export function enablePassCred(fd: number): void {
  const one = Buffer.alloc(4);
  one.writeInt32LE(1);
  c.setsockopt(fd, SOL_SOCKET, SO_PASSCRED, one, 4);
}

/** sockaddr_un for a path or an abstract name (leading NUL, exact length). */
export function unixSockaddr(name: Buffer, abstract: boolean): Buffer {
  if (abstract) {
    const addr = Buffer.alloc(3 + name.length);
    addr.writeUInt16LE(AF_UNIX, 0);
    name.copy(addr, 3);
    return addr;
  }
  const addr = Buffer.alloc(3 + name.length);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, 2);
  return addr;
}

function inetSockaddr(family: 4 | 6, address: Buffer, port: number, scopeId: number): Buffer {
  if (family === 4) {
    const sa = Buffer.alloc(16);
    sa.writeUInt16LE(AF_INET, 0);
    sa.writeUInt16BE(port, 2);
    address.copy(sa, 4);
    return sa;
  }
  const sa = Buffer.alloc(28);
  sa.writeUInt16LE(AF_INET6, 0);
  sa.writeUInt16BE(port, 2);
  address.copy(sa, 8);
  sa.writeUInt32LE(scopeId, 24);
  return sa;
}

/** What the native layer needs to know about a socket address. */
export type NativeAddress =
  | { readonly family: 'unix'; readonly name: Buffer; readonly abstract: boolean }
  | { readonly family: 4 | 6; readonly address: Buffer; readonly port: number; readonly scopeId: number };

function sockaddr(a: NativeAddress): Buffer {
  return a.family === 'unix' ? unixSockaddr(a.name, a.abstract) : inetSockaddr(a.family, a.address, a.port, a.scopeId);
}

/**
 * The sockaddr of each address object connected to (the engine reuses
 * them mail after mail): made once, not a Buffer.alloc per connect (about
 * 230 bytes of heap per relayed mail, measured with a sampling heap profile).
 */
const sockaddrs = new WeakMap<NativeAddress, Buffer>();

function cachedSockaddr(a: NativeAddress): Buffer {
  let addr = sockaddrs.get(a);
  if (addr === undefined) {
    addr = sockaddr(a);
    sockaddrs.set(a, addr);
  }
  return addr;
}

function familyOf(a: NativeAddress): number {
  return a.family === 'unix' ? AF_UNIX : a.family === 4 ? AF_INET : AF_INET6;
}

/**
 * A listening AF_UNIX stream socket (non-blocking, close-on-exec) on a path
 * or an abstract name; `describe` names it in error messages.
 */
export function listenUnix(name: Buffer, abstract: boolean, backlog: number, describe: string): number {
  const fd = check(c.socket(AF_UNIX, SocketType.stream | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), 'Failed to create socket');
  try {
    enablePassCred(fd);
    const addr = unixSockaddr(name, abstract);
    check(c.bind(fd, addr, addr.length), `Failed to bind to ${describe}`);
    check(c.listen(fd, backlog), 'Failed to listen');
    return fd;
  } catch (e) {
    c.close(fd);
    throw e;
  }
}

/**
 * A socket connected to `address`.  `blocking` sockets connect synchronously;
 * non-blocking ones may return while the connection is in progress
 * (`inProgress`), to be finished by the caller's event loop.
 */
export function connectSocket(
  address: NativeAddress,
  type: SocketTypeName,
  blocking: boolean,
): { fd: number; inProgress: boolean } {
  const flags = SocketType[type] | SOCK_CLOEXEC | (blocking ? 0 : SOCK_NONBLOCK);
  const fd = check(c.socket(familyOf(address), flags, 0), 'Failed to create socket');
  const addr = cachedSockaddr(address);
  if (c.connect(fd, addr, addr.length) < 0) {
    const errno = koffi.errno();
    if (!blocking && (errno === EINPROGRESS || errno === EAGAIN)) return { fd, inProgress: true };
    c.close(fd);
    throw new SystemError('Failed to connect', errno);
  }
  return { fd, inProgress: false };
}

/** One send(2); returns the byte count or throws SystemError('send() failed'). */
export function sendOn(fd: number, data: Buffer, nonBlocking: boolean): number {
  const flags = MSG_NOSIGNAL | (nonBlocking ? MSG_DONTWAIT : 0);
  return check(c.send(fd, data, data.length, flags), 'send() failed');
}

/** One non-blocking recv(2): a Buffer, or undefined when nothing is pending. */
export function recvNonBlocking(fd: number, max: number): Buffer | undefined {
  const buf = Buffer.alloc(max);
  const n = Number(c.recv(fd, buf, max, MSG_DONTWAIT));
  if (n < 0) {
    const errno = koffi.errno();
    if (errno === EAGAIN) return undefined;
    throw new SystemError('recv() failed', errno);
  }
  return buf.subarray(0, n);
}

/** getxattr(2): the value (≤ max bytes) or undefined on any error. */
export function getXattr(path: string, name: string, max: number): Buffer | undefined {
  const buf = Buffer.alloc(max);
  const n = Number(c.getxattr(path, name, buf, max));
  return n < 0 ? undefined : buf.subarray(0, n);
}

export const AI_NUMERICHOST = 0x4;
export const AI_ADDRCONFIG = 0x20;

function addrInfoHints(flags: number, type: 'stream' | 'dgram'): object {
  return { ai_flags: flags, ai_family: 0, ai_socktype: SocketType[type], ai_protocol: 0, ai_addrlen: 0, ai_addr: null, ai_canonname: null, ai_next: null };
}

/** getaddrinfo's outcome: the IPv4/IPv6 addresses of the list (which it frees), or gai_strerror's text. */
function addrInfoResult(rc: number, list: unknown): NativeAddress[] | string {
  if (rc !== 0) return c.gaiStrerror(rc) as string;
  const result: NativeAddress[] = [];
  try {
    for (let p = list; p !== null; ) {
      const ai = koffi.decode(p, AddrInfo) as { ai_family: number; ai_addrlen: number; ai_addr: unknown; ai_next: unknown };
      const sa = Buffer.from(koffi.decode(ai.ai_addr, koffi.array('uint8_t', ai.ai_addrlen)) as number[]);
      if (ai.ai_family === AF_INET) {
        result.push({ family: 4, address: sa.subarray(4, 8), port: sa.readUInt16BE(2), scopeId: 0 });
      } else if (ai.ai_family === AF_INET6) {
        result.push({ family: 6, address: sa.subarray(8, 24), port: sa.readUInt16BE(2), scopeId: sa.readUInt32LE(24) });
      }
      p = ai.ai_next;
    }
  } finally {
    c.freeaddrinfo(list);
  }
  return result;
}

/**
 * getaddrinfo(3) for one host and service; the addresses in the resolver's
 * order, or a string with gai_strerror's text.
 */
export function getAddrInfo(host: string, service: string, flags: number, type: 'stream' | 'dgram'): NativeAddress[] | string {
  const out: unknown[] = [null];
  const rc = c.getaddrinfo(host, service, addrInfoHints(flags, type), out) as number;
  return addrInfoResult(rc, out[0]);
}

/** getAddrInfo on a worker thread: the event loop goes on while the resolver waits for DNS. */
export function getAddrInfoAsync(host: string, service: string, flags: number, type: 'stream' | 'dgram'): Promise<NativeAddress[] | string> {
  return new Promise((resolve, reject) => {
    const out: unknown[] = [null];
    c.getaddrinfo.async(host, service, addrInfoHints(flags, type), out, (error: unknown, rc: number) => {
      if (error) reject(error instanceof Error ? error : new Error(String(error)));
      else resolve(addrInfoResult(rc, out[0]));
    });
  });
}

/** inet_ntop(3) of a 4- or 16-byte address. */
export function formatIp(family: 4 | 6, address: Buffer): string {
  const buf = Buffer.alloc(64);
  c.inetNtop(family === 4 ? AF_INET : AF_INET6, address, buf, 64);
  return buf.toString('latin1', 0, buf.indexOf(0));
}

// ---- cgroup directories (docs/mail.md) ----------------------------

// openat2(2) has no glibc wrapper; its syscall number is the same on every architecture.
const SYS_openat2 = 437;
const syscall = libc.func('long syscall(long, ...)');
const fgetxattr = libc.func('intptr_t fgetxattr(int, const void *, _Out_ void *, uintptr_t)');
const OPEN_READ_ONLY_DIRECTORY = 0o200000 /* O_DIRECTORY */ | 0o400 /* O_NOCTTY */ | 0o2000000; /* O_CLOEXEC */
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_BENEATH = 0x08;

function cString(bytes: Buffer): Buffer {
  return Buffer.concat([bytes, Buffer.of(0)]);
}

/**
 * openat2(2): the directory `path` (relative to `dirfd`) read-only, with
 * resolution confined beneath `dirfd` (no `..` escapes, no absolute
 * symlinks out) and no magic links.  Throws SystemError(`describe`).
 */
export function openDirectoryBeneath(dirfd: number, path: Buffer, describe: string): number {
  const how = Buffer.alloc(24); // struct open_how { u64 flags, mode, resolve; }
  how.writeBigUInt64LE(BigInt(OPEN_READ_ONLY_DIRECTORY), 0);
  how.writeBigUInt64LE(BigInt(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), 16);
  const fd = syscall(SYS_openat2, 'int', dirfd, 'const void *', cString(path), 'const void *', how, 'uintptr_t', how.length);
  return check(fd as number | bigint, describe);
}

/** fgetxattr(2): the value (≤ max bytes) or undefined on any error (missing, too large …). */
export function fgetXattr(fd: number, name: Buffer, max: number): Buffer | undefined {
  const buf = Buffer.alloc(max);
  const n = Number(fgetxattr(fd, cString(name), buf, max));
  return n < 0 ? undefined : buf.subarray(0, n);
}

const pipe2 = libc.func('int pipe2(_Out_ int *, int)');
const O_CLOEXEC = 0o2000000;

export interface PipeEnds {
  readonly readFd: number;
  readonly writeFd: number;
}

/**
 * pipe2(2) with O_CLOEXEC on both ends: a child gets an end only where it
 * is dup'ed onto one of its stdio descriptors (Node's stdio 'pipe' would be
 * a socketpair, not a pipe).
 */
export function createPipe(): PipeEnds {
  const fds = new Int32Array(2);
  check(pipe2(fds, O_CLOEXEC), 'pipe2() failed');
  return { readFd: fds[0]!, writeFd: fds[1]! };
}

// ---- systemd socket activation ---------------------------------------------

const fcntl = libc.func('int fcntl(int, int, ...)');
const F_SETFD = 2;
const FD_CLOEXEC = 1;

/** Marks an inherited descriptor close-on-exec (children must not get it). */
export function setCloseOnExec(fd: number): void {
  fcntl(fd, F_SETFD, 'int', FD_CLOEXEC);
}

const F_GETFL = 3;
const F_SETFL = 4;
const O_NONBLOCK = 0o4000;

/** Makes an inherited descriptor non-blocking. */
export function setNonBlocking(fd: number): void {
  const flags = fcntl(fd, F_GETFL) as number;
  if (flags >= 0) fcntl(fd, F_SETFL, 'int', flags | O_NONBLOCK);
}

// ---- accepting connections ourselves (so a full daemon can stop accepting) --

const accept4 = libc.func('int accept4(int, void *, void *, int)');
const getrlimit = libc.func('int getrlimit(int, _Out_ uint64_t *)');
const RLIMIT_NOFILE = 7;
const EINTR = 4;
const ECONNABORTED = 103;

/**
 * accept4(2) on a non-blocking listening socket: the connection's
 * descriptor (non-blocking, close-on-exec), or undefined when none is
 * waiting.  Throws SystemError('Failed to accept connection') (EMFILE …).
 */
export function acceptConnection(fd: number): number | undefined {
  for (;;) {
    const client = accept4(fd, null, null, SOCK_NONBLOCK | SOCK_CLOEXEC) as number;
    if (client >= 0) return client;
    const errno = koffi.errno();
    if (errno === EAGAIN) return undefined;
    // a client that gave up while waiting, or a signal: try the next one
    if (errno === EINTR || errno === ECONNABORTED) continue;
    throw new SystemError('Failed to accept connection', errno);
  }
}

/** The soft RLIMIT_NOFILE: how many descriptors this process may hold. */
export function openFileLimit(): number {
  const limits = new BigUint64Array(2);
  if (getrlimit(RLIMIT_NOFILE, limits) !== 0) return 1024;
  return Number(limits[0]! > 1n << 30n ? 1n << 30n : limits[0]!);
}

// ---- CPU affinity (the workers of `--workers`, one per CPU) ----

const schedGetaffinity = libc.func('int sched_getaffinity(int, uintptr_t, void *)');
const schedSetaffinity = libc.func('int sched_setaffinity(int, uintptr_t, void *)');
/** A cpu_set_t for up to 8192 CPUs. */
const CPU_SET_BYTES = 1024;

/** The CPUs the calling thread may run on (sched_getaffinity), ascending. */
export function allowedCpus(): number[] {
  const mask = Buffer.alloc(CPU_SET_BYTES);
  if (schedGetaffinity(0, CPU_SET_BYTES, mask) !== 0) throw new SystemError('Failed to read the CPU affinity', koffi.errno());
  const cpus: number[] = [];
  for (let i = 0; i < CPU_SET_BYTES * 8; i++) if ((mask[i >> 3]! >> (i & 7)) & 1) cpus.push(i);
  return cpus;
}

/** Restricts the calling thread (and the threads and processes it starts from now on) to `cpus`. */
export function setAllowedCpus(cpus: readonly number[]): void {
  const mask = Buffer.alloc(CPU_SET_BYTES);
  for (const cpu of cpus) mask[cpu >> 3]! |= 1 << (cpu & 7);
  if (schedSetaffinity(0, CPU_SET_BYTES, mask) !== 0) throw new SystemError('Failed to set the CPU affinity', koffi.errno());
}

/** Readiness of a descriptor in the event loop, which can be paused (the fd stays unpolled). */
export interface ReadableWatch {
  start(): void;
  stop(): void;
  close(): void;
}

/** Calls `onReadable` whenever `fd` is readable, while started (it starts stopped). */
export function watchReadable(fd: number, onReadable: () => void): ReadableWatch {
  const handle = koffi.node.poll(fd, { readable: true }, () => onReadable());
  handle.stop();
  let running = false;
  return {
    start: () => {
      if (running) return;
      running = true;
      handle.start({ readable: true }, () => onReadable());
    },
    stop: () => {
      if (!running) return;
      running = false;
      handle.stop();
    },
    close: () => {
      running = false;
      handle.close();
    },
  };
}
