-- PostgreSQL array literals (docs/pg.md):
-- `pg:encode_array(t)` and `pg:decode_array(s)`, pure Lua.  Installed
-- before pg.lua, which puts them into the `pg` table.  The original lets
-- the element errors escape as "C++ exception"; here they carry their text.
local _, M = ...

local select, type, error, next, tonumber, rawlen = select, type, error, next, tonumber, rawlen
local byte, sub, find, gsub, concat, floor, ceil = string.byte, string.sub, string.find, string.gsub, table.concat, math.floor, math.ceil
local argerror, arg_string, str51 = M.argerror, M.arg_string, M.str51

local LBRACE, RBRACE, COMMA, QUOTE, BACKSLASH = byte('{'), byte('}'), byte(','), byte('"'), byte('\\')

-- `{"a","b\"c"}`: every element quoted, `\` and `"` escaped; holes inside
-- 1..#t are empty strings.
function M.pg_encode_array(_, ...)
  if select('#', ...) > 1 then error('Too many parameters', 2) end
  local t = ...
  if type(t) ~= 'table' then argerror(1, 'encode_array', 'Table expected') end
  -- the raw length, as lua_objlen in the original (no __len)
  local n = rawlen(t)
  local elements = {}
  for key, value in next, t do
    local index = (type(key) == 'number' or type(key) == 'string') and tonumber(key) or nil
    if index == nil then error('Key is not a number', 2) end
    -- the integer value, cut toward zero as a C cast does
    index = index >= 0 and floor(index) or ceil(index)
    if index < 1 or index > n then error('Key out of range', 2) end
    local vt = type(value)
    if vt == 'number' then value = str51(value) elseif vt ~= 'string' then error('Bad value', 2) end
    elements[index] = value
  end
  if n == 0 then return '{}' end
  local quoted = {}
  for i = 1, n do
    quoted[i] = '"' .. gsub(elements[i] or '', '[\\"]', '\\%0') .. '"'
  end
  return '{' .. concat(quoted, ',') .. '}'
end

-- A quoted element starting at `pos` (the opening quote): its text and the
-- position after the closing quote.
local function quoted_element(s, pos)
  local parts = {}
  pos = pos + 1
  while true do
    local stop = find(s, '[\\"]', pos)
    if stop == nil then error('missing closing double quote', 3) end
    parts[#parts + 1] = sub(s, pos, stop - 1)
    if byte(s, stop) == QUOTE then return concat(parts), stop + 1 end
    if stop == #s then error('backslash at end of string', 3) end
    parts[#parts + 1] = sub(s, stop + 1, stop + 1)
    pos = stop + 2
  end
end

-- An array of strings from a one-dimensional array literal.  Unquoted
-- elements run to the next `,` anywhere in the rest (else to the next
-- `}`), unescaped and untrimmed, as in the original (`{a}b,c}` → `a}b`, `c`).
function M.pg_decode_array(_, ...)
  local n = select('#', ...)
  if n > 1 then error('Too many parameters', 2) end
  local s = arg_string((...), 1, n, 'decode_array')
  local result = {}
  if s == '' then return result end
  if byte(s, 1) ~= LBRACE then error("'{' expected", 2) end
  if s == '{}' then return result end
  local pos = 2
  while true do
    local c = byte(s, pos)
    local element
    if c == QUOTE then
      element, pos = quoted_element(s, pos)
      c = byte(s, pos)
      if c ~= COMMA and c ~= RBRACE then error("'}' or ',' expected", 2) end
    elseif c == LBRACE then
      error("unexpected '{'", 2)
    else
      local stop = find(s, ',', pos, true) or find(s, '}', pos, true)
      if stop == nil then error("missing '}'", 2) end
      element, pos = sub(s, pos, stop - 1), stop
      c = byte(s, pos)
    end
    result[#result + 1] = element
    if c ~= COMMA then break end
    pos = pos + 1
  end
  -- the loop ends on the closing brace
  if pos ~= #s then error("garbage after '}'", 2) end
  return result
end
