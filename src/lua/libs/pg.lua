-- The `pg` library (docs/pg.md): `pg:new` makes a connection object
-- whose `execute` suspends the calling coroutine until the result is there,
-- result objects with `fetch`, `listen` for NOTIFY callbacks, and the array
-- helpers (pg/array.lua).  The connection itself (queue, reconnects,
-- cancellation) lives in JavaScript: pg.ts and the folder pg/.
local js, M = ...

local select, type, error, setmetatable, rawlen, rawget, unpack, mtype, fmt =
  select, type, error, setmetatable, rawlen, rawget, table.unpack, math.type, string.format
local check_count, check_self, arg_string, arg_table, argerror, suspend, add_task, newud, owning_metatable =
  M.check_count, M.check_self, M.arg_string, M.arg_table, M.argerror, M.suspend, M.add_task, M.newud, M.owning_metatable

-- ---------------------------------------------------------------------
-- Result objects

local result_of = setmetatable({}, { __mode = 'k' }) -- result -> { fields, rows, next }

local RESULT_METHODS = {}

-- The next row as a table (column names or numbers as keys; NULL leaves
-- the key unset), or nothing once every row has been fetched.
function RESULT_METHODS.fetch(self, ...)
  local result = check_self(self, result_of, 'pg.result', 'fetch')
  local row = result.rows[result.next]
  if row == nil then return end
  local n = select('#', ...)
  local t, mode = ...
  if n >= 2 and mode ~= nil then mode = arg_string(mode, 2, n, 'fetch') else mode = 'a' end
  if mode ~= 'a' and mode ~= 'n' then argerror(2, 'fetch', 'Bad mode') end
  -- an explicit nil table with a mode is indexed (and fails) as in the original
  if n == 0 or (n == 1 and t == nil) then t = {} end
  result.next = result.next + 1
  local fields = result.fields
  for column = 1, #fields do
    local value = row[column]
    if value ~= nil then
      if mode == 'a' then t[fields[column]] = value else t[column] = value end
    end
  end
  return t
end

local RESULT_MT = { __index = RESULT_METHODS, __metatable = 'pg.result' }

local function new_result(fields, rows)
  local result = newud(RESULT_MT)
  result_of[result] = { fields = fields, rows = rows, next = 1 }
  return result
end

-- What `execute` returns for the values the engine resumes it with.
local function finish(kind, a, b)
  if kind == 'result' then return new_result(a, b) end
  if kind == 'error' then return nil, a end
  -- the connection broke while the query ran: no values at all
end

-- ---------------------------------------------------------------------
-- Connection objects

local connection_of = setmetatable({}, { __mode = 'k' }) -- connection -> { id, channels }
-- Connections with NOTIFY callbacks stay open for the daemon's lifetime.
local listening = {}

local METHODS = {}

function METHODS.execute(self, ...)
  local connection = check_self(self, connection_of, 'pg.connection', 'execute')
  local n = select('#', ...)
  check_count(n, 1, 2)
  local sql, params = ...
  sql = arg_string(sql, 1, n, 'execute')
  if n == 1 then return finish(suspend('pg_execute', connection.id, sql, false)) end
  arg_table(params, 2, n, 'execute')
  -- raw, as lua_objlen/lua_rawgeti in the original
  local count = rawlen(params)
  local values = {}
  for i = 1, count do
    local v = rawget(params, i)
    local t = type(v)
    if t == 'boolean' then
      values[i] = v and '1' or '0'
    elseif t == 'number' then
      -- integers exactly (JavaScript numbers lose digits beyond 2^53)
      values[i] = (mtype(v) == 'integer' and v > -1e16 and v < 1e16) and fmt('%d', v) or v
    elseif t == 'string' or t == 'nil' then
      values[i] = v
    else
      return nil, 'Unsupported query parameter type: ' .. t
    end
  end
  return finish(suspend('pg_execute', connection.id, sql, true, unpack(values, 1, count)))
end

function METHODS.listen(self, ...)
  local connection = check_self(self, connection_of, 'pg.connection', 'listen')
  local n = select('#', ...)
  check_count(n, 2, 2)
  local name, fn = ...
  name = arg_string(name, 1, n, 'listen')
  if type(fn) ~= 'function' then argerror(2, 'listen', 'function expected, got ' .. type(fn)) end
  if connection.channels[name] then argerror(1, 'listen', 'Duplicate notify name') end
  connection.channels[name] = true
  listening[self] = true
  js.listen(connection.id, name, add_task(fn))
end

local CONNECTION_MT = owning_metatable('pg.connection', METHODS, connection_of, 'id', js.close)

_G.pg = {
  -- A connection object; nothing connects before the first query or listen.
  new = function(_, ...)
    local n = select('#', ...)
    if n > 2 then error('Too many parameters', 2) end
    local conninfo, schema = ...
    conninfo = arg_string(conninfo, 1, n, 'new')
    schema = (n >= 2 and schema ~= nil) and arg_string(schema, 2, n, 'new') or ''
    local connection = newud(CONNECTION_MT)
    connection_of[connection] = { id = js.new(conninfo, schema), channels = {} }
    return connection
  end,
  encode_array = M.pg_encode_array,
  decode_array = M.pg_decode_array,
}
