// Runs Lua code as a configuration file through the real engine
// (LuaEngine.load) and returns what the code emitted.  The code gets
// `emit(...)` (one line of tab-separated tostring() values), `hex(s)`,
// `show(v)` (a canonical, type-exact text of any value) and `pcall_text(f,
// ...)` (the error message of a failing call, or "ok").
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LuaEngine, type EngineOptions } from '../../src/lua/engine.js';

/** A Lua string literal holding exactly the bytes of `s` (one char per byte, or a Buffer). */
export function luaString(s: string | Buffer): string {
  const bytes = Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1');
  let out = '"';
  for (const b of bytes) out += b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c ? String.fromCharCode(b) : `\\${String(b).padStart(3, '0')}`;
  return out + '"';
}

const PRELUDE = `
local __out = assert(io.open(__OUTPUT, 'wb'))
function emit(...)
  local parts = {}
  for i = 1, select('#', ...) do parts[i] = tostring((select(i, ...))) end
  __out:write(table.concat(parts, '\\t'), '\\n')
end
function hex(s) return (s:gsub('.', function(c) return string.format('%02x', c:byte()) end)) end
function show(v)
  local t = type(v)
  if t == 'string' then return 's:' .. hex(v) end
  if t == 'number' then return (math.type(v) == 'integer' and 'i:' or 'f:') .. string.format('%.17g', v) end
  if t ~= 'table' then return tostring(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return show(a) < show(b) end)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = show(k) .. '=' .. show(v[k]) end
  return '{' .. table.concat(parts, ',') .. '}'
end
function pcall_text(f, ...)
  local ok, err = pcall(f, ...)
  if ok then return 'ok' end
  return tostring(err)
end
`;

export interface LuaRunOptions {
  /** Globals set before the code runs (strings or numbers). */
  readonly globals?: Record<string, string | number>;
  /** Folder for the config file; a fresh temporary one (removed afterwards) by default. */
  readonly dir?: string;
}

/**
 * Runs `code` at configuration load time; resolves to the emitted lines.
 * A failing load rejects with the engine's error.
 */
export async function runLua(code: string, options: LuaRunOptions = {}): Promise<string[]> {
  const dir = options.dir ?? mkdtempSync(join(tmpdir(), 'qrelay-lua-'));
  try {
    const output = join(dir, 'emitted.txt');
    const globals = Object.entries({ ...options.globals, __OUTPUT: output })
      .map(([name, value]) => `${name} = ${typeof value === 'number' ? String(value) : luaString(value)}`)
      .join('\n');
    const config = join(dir, 'config.lua');
    // the code starts on a line of its own so its line numbers are easy to find
    writeFileSync(config, `${globals}\n${PRELUDE}\ndo\n${code}\nend\n__out:close()\n`);
    await LuaEngine.load(config, { listen() {} });
    return readFileSync(output, 'latin1').split('\n').slice(0, -1);
  } finally {
    if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
  }
}

/** An engine loaded from a config text in a temporary folder, past startup; dispose() removes the folder. */
export interface TestEngine {
  readonly engine: LuaEngine;
  dispose(): void;
}

/** Loads `config` as a config file (in a fresh folder named after `prefix`) and finishes startup. */
export async function loadTestEngine(config: string, prefix: string, options: EngineOptions = {}): Promise<TestEngine> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  writeFileSync(join(dir, 'config.lua'), config);
  const engine = await LuaEngine.load(join(dir, 'config.lua'), { listen() {} }, options);
  engine.finishStartup();
  return { engine, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}
