-- qrelay's Lua runtime, first chunk: creates M, the table every runtime
-- chunk and every library shares, with the helpers they all use.  The
-- runtime's chunks (runtime-chunks.ts lists them in order) each run once
-- as chunk(js, M) — `js` the bridged primitives — before any script code,
-- so every standard function they capture is the original.
local js = ...

local type, error, fmt = type, error, string.format

local M = {}

-- Lua 5.1 number-to-string coercion (%.14g) for values handed to qrelay.
local function str51(v)
  if type(v) == 'number' then return fmt('%.14g', v) end
  return v
end
M.str51 = str51

local function argerror(n, fname, msg, level)
  error(fmt("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 2) + 1)
end
M.argerror = argerror

-- A new full userdata whose metatable is `mt` (state is kept in weak tables).
-- Fresh userdata come from the engine in batches (js.newuds: one crossing
-- for many); each gets its metatable here.
local setmetatable_any, newuds = debug.setmetatable, js.newuds
local spare, spares = {}, 0
function M.newud(mt)
  if spares == 0 then
    spare = { newuds() }
    spares = #spare
  end
  local ud = spare[spares]
  spare[spares] = nil
  spares = spares - 1
  return setmetatable_any(ud, mt)
end

-- A string or number argument as a string, else a type error.
function M.checkstring(v, n, fname, level)
  local t = type(v)
  if t == 'string' then return v end
  if t == 'number' then return str51(v) end
  argerror(n, fname, 'string expected, got ' .. (t == 'nil' and 'nil' or t), (level or 2) + 1)
end

-- An error value as text: strings as they are, numbers in the 5.1 form,
-- anything else its type name.
function M.errtext(e)
  local t = type(e)
  if t == 'string' then return e end
  if t == 'number' then return str51(e) end
  return t
end

return M
