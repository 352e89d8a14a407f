// The values that cross the bridge (lua-state.ts) between Lua and
// JavaScript: only plain data, never a JavaScript object.

/** A value received from Lua.  Strings are byte strings (latin1). */
export type LuaArg = undefined | boolean | number | string | LuaOpaque;

/** A value Lua holds that does not cross the bridge (table, function …). */
export class LuaOpaque {
  constructor(readonly type: string) {}
}

/** A value that can be pushed to Lua (copied). */
export type LuaPushable =
  | undefined
  | null
  | boolean
  | number
  | bigint
  | string
  | Buffer
  | readonly LuaPushable[]
  | { readonly [key: string]: LuaPushable };

/** Raise a Lua error from a bridged function.  `position` adds `chunk:line: `. */
export class LuaError extends Error {
  constructor(
    message: string,
    readonly position = false,
  ) {
    super(message);
  }
}

export type BridgedFunction = (args: LuaArg[]) => LuaPushable[] | LuaPushable | void;
