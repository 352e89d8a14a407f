// Errors that cross module boundaries (seen by the engine, the stages and the daemon).

/** A startup failure: print `message` and exit 1. */
export class ConfigError extends Error {}

/** What Lua's run-time limit cannot stop (src/streams/stuck-code.ts stops it from outside), for log lines. */
export const STUCK_CAUSES = 'a __gc metamethod or a library function such as string.find, which the run-time limit cannot interrupt';

/** Why a run of Lua code failed when it held the process and was stopped. */
export function stuckLuaCode(heldMs: number): string {
  return `Lua code was stopped after it held the process for ${(heldMs / 1000).toFixed(1)} s (${STUCK_CAUSES})`;
}

/** The startup error when loading the config held the process and was stopped. */
export function stuckAtStartup(configPath: string, heldMs: number): ConfigError {
  return new ConfigError(`${configPath}: Lua code held the process for ${(heldMs / 1000).toFixed(1)} s while the config was loaded and was stopped (${STUCK_CAUSES})`);
}
