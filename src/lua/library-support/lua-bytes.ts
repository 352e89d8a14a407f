// Lua strings cross the bridge as byte strings (one char per byte, latin1).
import type { LuaArg } from '../lua-values.js';

/** A Lua string argument as the bytes it holds. */
export function bytesOf(v: LuaArg): Buffer {
  return Buffer.from(String(v), 'latin1');
}
