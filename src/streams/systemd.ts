// systemd integration (docs/systemd.md): sockets passed by socket
// activation, and sd_notify messages (READY, RELOADING, STOPPING, WATCHDOG)
// on the NOTIFY_SOCKET datagram socket.
import { Observable, interval, map } from '../rx.js';
import { closeFd, connectSocket, sendOn, setCloseOnExec } from '../native/linux.js';
import { logPlain } from '../log.js';

const SD_LISTEN_FDS_START = 3;

/**
 * Takes the descriptors systemd passed (LISTEN_FDS/LISTEN_PID), consuming
 * the variables as sd_listen_fds(unset_environment=1) does.  A second call
 * finds none.
 */
export function takeListenFds(): number[] {
  const pid = process.env.LISTEN_PID;
  const count = process.env.LISTEN_FDS;
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_FDNAMES;
  if (pid === undefined || count === undefined || Number(pid) !== process.pid) return [];
  const n = Number(count);
  if (!Number.isInteger(n) || n <= 0) return [];
  const fds = Array.from({ length: n }, (_, i) => SD_LISTEN_FDS_START + i);
  fds.forEach(setCloseOnExec);
  return fds;
}

/** Sends sd_notify messages; a no-op without NOTIFY_SOCKET. */
export interface Notifier {
  notify(message: string): void;
  close(): void;
}

const SILENT: Notifier = { notify: () => {}, close: () => {} };

export function createNotifier(): Notifier {
  const path = process.env.NOTIFY_SOCKET;
  if (path === undefined || path === '' || !(path.startsWith('/') || path.startsWith('@'))) return SILENT;
  const abstract = path.startsWith('@');
  let fd: number;
  try {
    fd = connectSocket({ family: 'unix', name: Buffer.from(abstract ? path.slice(1) : path), abstract }, 'dgram', false).fd;
  } catch (e) {
    logPlain(`Failed to connect to NOTIFY_SOCKET ${path}: ${(e as Error).message}`);
    return SILENT;
  }
  return {
    notify: (message) => {
      try {
        sendOn(fd, Buffer.from(message), true);
      } catch (e) {
        logPlain(`sd_notify failed: ${(e as Error).message}`);
      }
    },
    close: () => closeFd(fd),
  };
}

/** `RELOADING=1` with the monotonic timestamp systemd wants with it. */
export function reloadingMessage(): string {
  return `RELOADING=1\nMONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`;
}

/**
 * Emits `WATCHDOG=1` at half the interval systemd asked for
 * (WATCHDOG_USEC, for this process per WATCHDOG_PID); never emits otherwise.
 */
export function watchdogPings$(): Observable<string> {
  const usec = Number(process.env.WATCHDOG_USEC);
  const pid = process.env.WATCHDOG_PID;
  if (!Number.isFinite(usec) || usec <= 0 || (pid !== undefined && Number(pid) !== process.pid)) return new Observable<string>();
  return interval(Math.max(1, usec / 2000)).pipe(map(() => 'WATCHDOG=1'));
}
