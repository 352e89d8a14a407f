-- What configuration scripts written for the original (LuaJIT, Lua 5.1
-- dialect) rely on, provided on Lua 5.4 (docs/lua-compat.md).
local js = ...

local type, select, error, pairs, tostring, setmetatable = type, select, error, pairs, tostring, setmetatable
local fmt, floor, ceil, tointeger = string.format, math.floor, math.ceil, math.tointeger
local G = _G

G.unpack = table.unpack
G.loadstring = function(s, chunkname) return load(s, chunkname) end
G.gcinfo = function() return floor(collectgarbage('count')) end
G.newproxy = function(arg)
  local mt = arg == true and {} or nil
  return js.newud(mt or {})
end

-- Numbers become strings as Lua 5.1 does it: %.14g, no ".0".
G.tostring = function(v)
  if type(v) == 'number' then return fmt('%.14g', v) end
  return tostring(v)
end

-- LuaJIT truncates non-integral arguments of integer conversions, and %s
-- of a number uses the 5.1 form.
local INTEGER_CONVERSIONS = { d = true, i = true, o = true, u = true, x = true, X = true, c = true }
string.format = function(format, ...)
  local args = { ... }
  local n = select('#', ...)
  local index = 0
  for conversion in format:gmatch('%%[-+ #0]*%d*%.?%d*(.)') do
    if conversion ~= '%' then
      index = index + 1
      local a = args[index]
      if type(a) == 'number' then
        if INTEGER_CONVERSIONS[conversion] and not tointeger(a) and a == a and a ~= 1 / 0 and a ~= -1 / 0 then
          args[index] = a >= 0 and floor(a) or ceil(a)
        elseif conversion == 's' then
          args[index] = fmt('%.14g', a)
        end
      end
    end
  end
  return fmt(format, table.unpack(args, 1, n))
end

-- table functions removed after 5.1
table.getn = function(t) return #t end
table.maxn = function(t)
  local max = 0
  for k in pairs(t) do
    if type(k) == 'number' and k > max then max = k end
  end
  return max
end
table.foreach = function(t, f)
  for k, v in pairs(t) do
    local r = f(k, v)
    if r ~= nil then return r end
  end
end
table.foreachi = function(t, f)
  for i = 1, #t do
    local r = f(i, t[i])
    if r ~= nil then return r end
  end
end

-- math functions removed after 5.1
math.pow = function(x, y) return x ^ y end
math.ldexp = function(m, e) return m * 2.0 ^ e end
math.frexp = function(x)
  if x == 0 or x ~= x or x == math.huge or x == -math.huge then return x, 0 end
  local e = floor(math.log(math.abs(x), 2)) + 1
  local m = x / 2.0 ^ e
  if math.abs(m) >= 1 then m, e = m / 2, e + 1 elseif math.abs(m) < 0.5 then m, e = m * 2, e - 1 end
  return m, e
end
math.cosh = function(x) return (math.exp(x) + math.exp(-x)) / 2 end
math.sinh = function(x) return (math.exp(x) - math.exp(-x)) / 2 end
math.tanh = function(x)
  if x > 20 then return 1.0 elseif x < -20 then return -1.0 end
  local a, b = math.exp(x), math.exp(-x)
  return (a - b) / (a + b)
end
math.log10 = function(x) return math.log(x, 10) end

-- setfenv/getfenv through the _ENV upvalue
local function env_upvalue(f)
  local i = 1
  while true do
    local name, value = debug.getupvalue(f, i)
    if name == '_ENV' then return i, value end
    if name == nil then return nil end
    i = i + 1
  end
end
local function resolve_function(f, fname)
  if type(f) == 'number' then
    local info = debug.getinfo(f + 2, 'f')
    if info == nil then error("bad argument #1 to '" .. fname .. "' (invalid level)", 3) end
    return info.func
  end
  return f
end
G.getfenv = function(f)
  f = resolve_function(f or 1, 'getfenv')
  if f == nil or type(f) ~= 'function' then return G end
  local _, env = env_upvalue(f)
  return env or G
end
G.setfenv = function(f, t)
  f = resolve_function(f, 'setfenv')
  local i = env_upvalue(f)
  if i then debug.upvaluejoin(f, i, function() return t end, 1) end
  return f
end

G.module = function(name, ...)
  local m = package.loaded[name] or G[name] or {}
  G[name] = m
  package.loaded[name] = m
  m._NAME, m._M, m._PACKAGE = name, m, name:match('^(.*)%.') or ''
  for i = 1, select('#', ...) do select(i, ...)(m) end
  local caller = debug.getinfo(2, 'f')
  if caller then G.setfenv(caller.func, m) end
end
package.seeall = function(m) setmetatable(m, { __index = G }) end

-- LuaJIT's bit library (32-bit results, signed)
local function tobit(x)
  x = tointeger(x) or floor(x)
  x = x & 0xFFFFFFFF
  if x >= 0x80000000 then x = x - 0x100000000 end
  return x
end
local function reduce(op)
  return function(x, ...)
    local r = tobit(x)
    for i = 1, select('#', ...) do r = op(r, tobit((select(i, ...)))) end
    return tobit(r)
  end
end
G.bit = {
  tobit = tobit,
  band = reduce(function(a, b) return a & b end),
  bor = reduce(function(a, b) return a | b end),
  bxor = reduce(function(a, b) return a ~ b end),
  bnot = function(x) return tobit(~tobit(x)) end,
  lshift = function(x, n) return tobit(tobit(x) << (tobit(n) & 31)) end,
  rshift = function(x, n) return tobit((tobit(x) & 0xFFFFFFFF) >> (tobit(n) & 31)) end,
  arshift = function(x, n) return tobit(tobit(x) // (1 << (tobit(n) & 31))) end,
  rol = function(x, n)
    n = tobit(n) & 31
    x = tobit(x) & 0xFFFFFFFF
    return tobit((x << n) | (x >> (32 - n)))
  end,
  ror = function(x, n)
    n = tobit(n) & 31
    x = tobit(x) & 0xFFFFFFFF
    return tobit((x >> n) | (x << (32 - n)))
  end,
  bswap = function(x)
    x = tobit(x) & 0xFFFFFFFF
    return tobit(((x & 0xFF) << 24) | ((x & 0xFF00) << 8) | ((x >> 8) & 0xFF00) | (x >> 24))
  end,
  tohex = function(x, n)
    n = n or 8
    local upper = n < 0
    if upper then n = -n end
    local s = fmt(upper and '%08X' or '%08x', tobit(x) & 0xFFFFFFFF)
    return s:sub(-n)
  end,
}

G.jit = {
  version = 'LuaJIT 2.1.0-beta3',
  version_num = 20100,
  os = 'Linux',
  arch = 'x64',
  on = function() end,
  off = function() end,
  flush = function() end,
  status = function() return false end,
}
