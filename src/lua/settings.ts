// qrelay's own settings: globals a config may assign (extensions of ours: a
// config written for the original sets none of them and gets the
// defaults).  One table names each setting, its global and its check; the
// engine reads them all once, after the config ran (startup-api.ts).
import type { LuaArg } from './lua-values.js';
import { ConfigError } from '../errors.js';
import { MAX_LUA_MEMORY_LIMIT, MIN_LUA_MEMORY_LIMIT } from './heap-limit.js';

/** What Lua reports for one global: its value, `tonumber(value)` and `type(value)`. */
export interface SettingValue {
  readonly raw: LuaArg;
  readonly number: LuaArg;
  readonly type: LuaArg;
}

interface Setting {
  /** The global the script assigns. */
  readonly global: string;
  /** The setting's number, or undefined when the global is nil; throws ConfigError. */
  readonly check: (value: SettingValue, name: string) => number | undefined;
}

/** An integer from `min` to `max`: a number or a numeric string. */
function integerFrom(min: number, max: number): Setting['check'] {
  return ({ raw }, name) => {
    if (raw === undefined) return undefined;
    const n = typeof raw === 'number' || typeof raw === 'string' ? Number(raw) : NaN;
    if (!Number.isInteger(n) || n < min || n > max) throw new ConfigError(`\`${name}\` must be an integer from ${min} to ${max}`);
    return n;
  };
}

/** A positive number (what Lua's tonumber makes of the value). */
const positiveNumber: Setting['check'] = ({ raw, number, type }, name) => {
  if (raw === undefined) return undefined;
  if (typeof number !== 'number') throw new ConfigError(`\`${name}\` must be a positive number, not a ${String(type)}`);
  if (!(number > 0)) throw new ConfigError(`\`${name}\` must be a positive number, not ${String(number)}`);
  return number;
};

/** The settings, in the order they are checked (the first bad one is reported). */
const SETTINGS = {
  /** Bytes of requests held at once before reading pauses (default: min(1 GiB, RAM/4)). */
  maxBytesInFlight: { global: 'max_bytes_in_flight', check: positiveNumber },
  /** The Lua heap cap in bytes. */
  luaMemoryLimit: { global: 'lua_memory_limit', check: integerFrom(MIN_LUA_MEMORY_LIMIT, MAX_LUA_MEMORY_LIMIT) },
  /** Connections one uid may hold at once (0: off). */
  maxConnectionsPerUid: { global: 'max_connections_per_uid', check: integerFrom(0, 1_000_000) },
  /** Connections the daemon serves at once. */
  maxConnections: { global: 'max_connections', check: integerFrom(1, 1_000_000) },
} as const satisfies Record<string, Setting>;

/** Each setting's value, undefined where the config does not set it (the daemon's default). */
export type Settings = { readonly [K in keyof typeof SETTINGS]: number | undefined };

const KEYS = Object.keys(SETTINGS) as (keyof typeof SETTINGS)[];

/** The globals to read, in order (what `M.settings` gets). */
export const SETTING_GLOBALS: readonly string[] = KEYS.map((key) => SETTINGS[key].global);

/** Checks what `M.settings(...SETTING_GLOBALS)` returned: three values per setting. */
export function readSettings(values: readonly LuaArg[]): Settings {
  const settings: Partial<Record<keyof typeof SETTINGS, number | undefined>> = {};
  KEYS.forEach((key, i) => {
    const { global, check } = SETTINGS[key];
    settings[key] = check({ raw: values[3 * i], number: values[3 * i + 1], type: values[3 * i + 2] }, global);
  });
  return settings as Settings;
}
