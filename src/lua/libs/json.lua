-- The `json` library (docs/libraries.md).  `dump` walks the value in Lua (it
-- has to see userdata, functions and threads); `parse` lets JavaScript check
-- and tokenize the text and builds the tables here, iteratively, from the
-- flat event list it returns.
local js, M = ...

local G, type, select, next, error, tointeger, floor, ceil, sort, concat, fmt, gsub, byte, utf8_len, getinfo =
  _G, type, select, next, error, math.tointeger, math.floor, math.ceil, table.sort, table.concat,
  string.format, string.gsub, string.byte, utf8.len, debug.getinfo
local check_count, arg_string, str51 = M.check_count, M.arg_string, M.str51

-- Deeper structures are refused (the original recursed until it crashed).
local MAX_DEPTH = 1000
local TOO_DEEP = 'JSON nesting too deep'

local ESCAPES = { ['"'] = '\\"', ['\\'] = '\\\\', ['\b'] = '\\b', ['\f'] = '\\f', ['\n'] = '\\n', ['\r'] = '\\r', ['\t'] = '\\t' }
for b = 0, 31 do
  local c = string.char(b)
  if ESCAPES[c] == nil then ESCAPES[c] = fmt('\\u%04x', b) end
end

local function encode_string(s, out)
  -- the original's JSON library throws on invalid UTF-8; LuaJIT turns any
  -- C++ exception into this text (verified against the running original)
  if not utf8_len(s) then error('C++ exception', 0) end
  out[#out + 1] = '"' .. gsub(s, '[\0-\31"\\]', ESCAPES) .. '"'
end

-- lua_tointeger on x86-64: truncation, INT64_MIN when out of range or NaN.
local function integer_text(n)
  local i = tointeger(n)
  if i == nil then
    if n ~= n or n >= 0x1p63 or n < -0x1p63 then
      i = math.mininteger
    else
      i = n >= 0 and floor(n) or ceil(n)
    end
  end
  return i .. ''
end

local function pointer_text(prefix, v)
  return prefix .. ':' .. fmt('%p', v)
end

local encode_value

-- A table is always an object: keys as strings, the first of several keys
-- that convert to the same string wins, `overrides` (string → value) last.
local function encode_table(t, depth, out, overrides)
  if depth >= MAX_DEPTH then error(TOO_DEEP, 0) end
  local keys, values = {}, {}
  for k, v in next, t do
    local kt = type(k)
    local key = kt == 'string' and k or kt == 'number' and str51(k) or ''
    if values[key] == nil then
      keys[#keys + 1] = key
      values[key] = v
    end
  end
  if overrides then
    for key, v in next, overrides do
      if values[key] == nil then keys[#keys + 1] = key end
      values[key] = v
    end
  end
  sort(keys)
  out[#out + 1] = '{'
  for i = 1, #keys do
    if i > 1 then out[#out + 1] = ',' end
    local key = keys[i]
    encode_string(key, out)
    out[#out + 1] = ':'
    encode_value(values[key], depth + 1, out)
  end
  out[#out + 1] = '}'
end

encode_value = function(v, depth, out)
  local t = type(v)
  if t == 'string' then
    encode_string(v, out)
  elseif t == 'number' then
    out[#out + 1] = integer_text(v)
  elseif t == 'table' then
    encode_table(v, depth, out)
  elseif t == 'nil' then
    out[#out + 1] = 'null'
  elseif t == 'boolean' then
    out[#out + 1] = v and 'true' or 'false'
  elseif t == 'function' then
    encode_string(getinfo(v, 'S').what == 'C' and pointer_text('cfunction', v) or 'cfunction:(nil)', out)
  else -- userdata, thread
    encode_string(pointer_text(t, v), out)
  end
end

-- For jwt: the JSON text of a value, and of a table with members replaced.
function M.json_encode(v)
  local out = {}
  encode_value(v, 0, out)
  return concat(out)
end

function M.json_encode_object(t, overrides)
  local out = {}
  encode_table(t, 0, out, overrides)
  return concat(out)
end

-- Event bytes of js.parse (see json.ts).
local OPEN_OBJECT, OPEN_ARRAY, CLOSE, KEY, VALUE, NULL = byte('{[)kvz', 1, 6)

local function build(events, values)
  local root
  local containers, is_array, slots = {}, {}, {} -- per open container
  local depth, vi, key = 0, 0, nil
  for i = 1, #events do
    local e = byte(events, i)
    if e == CLOSE then
      containers[depth] = nil
      depth = depth - 1
    elseif e == KEY then
      vi = vi + 1
      key = values[vi]
    else
      local v
      if e == VALUE then
        vi = vi + 1
        v = values[vi]
      elseif e ~= NULL then
        v = {}
      end
      if depth == 0 then
        root = v
      elseif is_array[depth] then
        local slot = slots[depth] + 1
        slots[depth] = slot
        containers[depth][slot] = v
      else
        containers[depth][key] = v
      end
      if e == OPEN_OBJECT or e == OPEN_ARRAY then
        depth = depth + 1
        containers[depth], is_array[depth], slots[depth] = v, e == OPEN_ARRAY, 0
      end
    end
  end
  return root
end

G.json = {
  dump = function(...)
    check_count(select('#', ...), 1, 1)
    return M.json_encode((...))
  end,
  parse = function(...)
    local n = select('#', ...)
    check_count(n, 1, 1)
    local events, values = js.parse(arg_string((...), 1, n, 'parse'), MAX_DEPTH)
    if events == nil then return nil, values end
    return build(events, values)
  end,
}
