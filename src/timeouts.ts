// Every timeout of the daemon, in one place: the values of the original
// (or, where it has none, ours), each with where it applies.  The daemon
// reads them once at startup (`timeoutsFromEnvironment`) and hands them to
// the stages that use them, so tests can run with shorter ones.

export interface Timeouts {
  /** Client → qrelay: this long without a chunk of the request closes the connection silently. */
  readonly receiveIdleMs: number;
  /** `connect`: establishing the connection (`Zconnect failed`, log `Connect timeout`). */
  readonly connectMs: number;
  /** `connect`/`exec`: writing the request, this long without write progress (`Zrelay failed`, log `Connect timeout`, sic). */
  readonly sendStallMs: number;
  /** `connect`/`exec`: waiting for the first answer byte once the request is written (`Zrelay failed`). */
  readonly firstResponseByteMs: number;
  /** `connect`/`exec`: between answer chunks after the first (`Zrelay failed`). */
  readonly betweenResponseChunksMs: number;
  /** `exec`: how long a child that closed stdout without an answer may take to exit (our fix of the original's busy loop). */
  readonly exitAfterEofMs: number;
  /** `exec`/`exec_raw`: a terminated child that ignores SIGTERM gets SIGKILL after this. */
  readonly killGraceMs: number;
  /** After SIGTERM: how long mails in flight may take to finish before they are cancelled. */
  readonly shutdownGraceMs: number;
  /** Lua code running this long without pausing gets an uncatchable error. */
  readonly luaRunTimeMs: number;
  /**
   * Code holding the process this long without returning to its event
   * loop is stopped from outside, and the process ends once the mails in
   * flight are done (src/streams/stuck-code.ts): what the run-time limit
   * cannot stop (a Lua `__gc` metamethod, a library function such as
   * string.find).  Twice the run-time limit, at least 200 ms.
   */
  readonly stuckCodeMs: number;
  /** `connect` with several servers: a server that failed is skipped this long, doubling with each further failure… */
  readonly serverBackoffFirstMs: number;
  /** … up to this. */
  readonly serverBackoffMaxMs: number;
}

/** The defaults: the original's values (docs/limits.md, docs/actions.md) and ours where it has none. */
export const DEFAULT_TIMEOUTS: Timeouts = {
  receiveIdleMs: 5_000,
  connectMs: 20_000,
  sendStallMs: 10_000,
  firstResponseByteMs: 60_000,
  betweenResponseChunksMs: 5_000,
  exitAfterEofMs: 5_000,
  killGraceMs: 60_000,
  shutdownGraceMs: 5_000,
  luaRunTimeMs: 10_000,
  stuckCodeMs: 20_000,
  serverBackoffFirstMs: 10_000,
  serverBackoffMaxMs: 300_000,
};

/** `pg` library: a cancel request's connection is dropped when the server neither reads it nor closes in this time. */
export const PG_CANCEL_TIMEOUT_MS = 10_000;
/** `pg` library: delay between reconnect attempts after the immediate one failed. */
export const PG_RECONNECT_INTERVAL_MS = 10_000;

/** Timeouts.stuckCodeMs for a run-time limit of `luaRunTimeMs`. */
export function stuckCodeLimit(luaRunTimeMs: number): number {
  return Math.max(2 * luaRunTimeMs, 200);
}

/** A non-negative number of milliseconds from `env[name]`, else `fallback`. */
export function millisecondsFromEnvironment(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const text = env[name];
  const value = Number(text);
  return text !== undefined && text !== '' && Number.isFinite(value) && value >= 0 ? value : fallback;
}

/**
 * The defaults with the overrides the environment gives: the operator's
 * `QRELAY_SHUTDOWN_GRACE_MS` and `QRELAY_LUA_TIME_LIMIT_MS`, and the
 * `QRELAY_TEST_*` ones, which exist for the tests only (the real 60 s
 * and 10 s would make fault-injection tests take minutes).
 */
export function timeoutsFromEnvironment(env: NodeJS.ProcessEnv): Timeouts {
  const d = DEFAULT_TIMEOUTS;
  const luaRunTimeMs = millisecondsFromEnvironment(env, 'QRELAY_LUA_TIME_LIMIT_MS', d.luaRunTimeMs);
  return {
    ...d,
    shutdownGraceMs: millisecondsFromEnvironment(env, 'QRELAY_SHUTDOWN_GRACE_MS', d.shutdownGraceMs),
    luaRunTimeMs,
    stuckCodeMs: stuckCodeLimit(luaRunTimeMs),
    killGraceMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_KILL_GRACE_MS', d.killGraceMs),
    serverBackoffFirstMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_BACKOFF_FIRST_MS', d.serverBackoffFirstMs),
    serverBackoffMaxMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_BACKOFF_MAX_MS', d.serverBackoffMaxMs),
    sendStallMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_SEND_STALL_MS', d.sendStallMs),
    firstResponseByteMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_FIRST_RESPONSE_BYTE_MS', d.firstResponseByteMs),
    betweenResponseChunksMs: millisecondsFromEnvironment(env, 'QRELAY_TEST_BETWEEN_RESPONSE_CHUNKS_MS', d.betweenResponseChunksMs),
  };
}
