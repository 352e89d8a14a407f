-- Argument checks shared by the libraries, with the texts of the Lua 5.1
-- auxiliary library the original was built on (a missing argument is "no
-- value", numbers pass as strings, integers are truncated).  Installed
-- first; the helpers are added to M.  They must be called directly by the
-- library function the script called, so errors point at the script's line.
local _, M = ...

local type, error, tonumber, tointeger, floor, ceil =
  type, error, tonumber, math.tointeger, math.floor, math.ceil
local argerror, str51 = M.argerror, M.str51

local function typename(v, i, n)
  if i > n then return 'no value' end
  return type(v)
end

-- Raises `Not enough parameters` / `Too many parameters` for `n` arguments.
function M.check_count(n, min, max)
  if n < min then error('Not enough parameters', 3) end
  if n > max then error('Too many parameters', 3) end
end

-- Argument `i` (of `n` present) as a string (luaL_checklstring).  `depth`:
-- helper frames between the library function and this call (default 0).
function M.arg_string(v, i, n, fname, depth)
  local t = type(v)
  if t == 'string' then return v end
  if t == 'number' then return str51(v) end
  argerror(i, fname, 'string expected, got ' .. typename(v, i, n), 3 + (depth or 0))
end

-- Argument `i` as an integer (luaL_checkinteger: numeric strings pass,
-- fractions are cut toward zero).
function M.arg_integer(v, i, n, fname)
  local x = (type(v) == 'number' or type(v) == 'string') and tonumber(v) or nil
  if x == nil then argerror(i, fname, 'number expected, got ' .. typename(v, i, n), 3) end
  local int = tointeger(x)
  if int then return int end
  if x ~= x then return 0 end
  if x >= 0x1p63 or x < -0x1p63 then return math.mininteger end
  return x >= 0 and floor(x) or ceil(x)
end

-- Argument `i` must be a table (luaL_checktype).
function M.arg_table(v, i, n, fname)
  if type(v) ~= 'table' then argerror(i, fname, 'table expected, got ' .. typename(v, i, n), 3) end
  return v
end

-- `self` of a method: its state from `states` (a weak table keyed by the
-- userdata), else `bad argument #1 … (CLASS expected, got TYPE)`.
function M.check_self(self, states, class, fname)
  local state = states[self]
  if state == nil then argerror(1, fname, class .. ' expected, got ' .. type(self), 3) end
  return state
end
