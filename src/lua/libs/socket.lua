-- The `socket` library (docs/libraries.md): `socket:connect` makes a blocking
-- stream, datagram or seqpacket socket connected synchronously (as in the
-- original; the event loop waits), with `send` and `close`.  The socket is
-- closed when its object is collected.  System calls are in socket.ts.
local js, M = ...

local select, type, next, error, setmetatable = select, type, next, error, setmetatable
local check_count, check_self, arg_string, arg_integer, arg_table, argerror, str51, address_id, newud, owning_metatable =
  M.check_count, M.check_self, M.arg_string, M.arg_integer, M.arg_table, M.argerror, M.str51, M.address_id, M.newud, M.owning_metatable

local TYPES = { stream = true, dgram = true, seqpacket = true }

local socket_of = setmetatable({}, { __mode = 'k' }) -- socket -> { fd = … } (fd nil once closed)

-- Position `pos` (argument `i`) in a string of `len` bytes, negative from
-- the end; unlike string.sub it must lie inside the string.
local function position(pos, len, i)
  if pos < 0 then pos = len + 1 + pos end
  if pos < 1 or pos > len then argerror(i, 'send', 'Bad string position', 3) end
  return pos
end

local METHODS = {}

-- Bytes sent, or nil and the system's error text.  END cuts first, then
-- START applies to what is left.
function METHODS.send(self, ...)
  local sock = check_self(self, socket_of, 'socket', 'send')
  local n = select('#', ...)
  check_count(n, 1, 3)
  local data, first, last = ...
  data = arg_string(data, 1, n, 'send')
  if n >= 3 then data = data:sub(1, position(arg_integer(last, 3, n, 'send'), #data, 3)) end
  if n >= 2 then data = data:sub(position(arg_integer(first, 2, n, 'send'), #data, 2)) end
  if data == '' then return 0 end
  return js.send(sock.fd or -1, data)
end

function METHODS.close(self, ...)
  local sock = check_self(self, socket_of, 'socket', 'close')
  check_count(select('#', ...), 0, 0)
  if sock.fd then
    js.close(sock.fd)
    sock.fd = nil
  end
end

local SOCKET_MT = owning_metatable('socket', METHODS, socket_of, 'fd', js.close)

-- The socket type named by the OPTIONS table.
local function socket_type(options)
  local socktype = 'stream'
  for key, value in next, options do
    if type(key) ~= 'string' then error('Key is not a string', 3) end
    if key ~= 'type' then error('Unrecognized option', 3) end
    local t = type(value)
    if t ~= 'string' and t ~= 'number' then error("'type' must be a string", 3) end
    value = str51(value)
    if not TYPES[value] then error('Unsupported socket type', 3) end
    socktype = value
  end
  return socktype
end

_G.socket = {
  -- A connected socket, or nil and the system's error text; address
  -- errors are raised.
  connect = function(_, ...)
    local n = select('#', ...)
    check_count(n, 1, 2)
    local address, options = ...
    local t = type(address)
    local kind, value
    if t == 'string' or t == 'number' then
      kind, value = 'string', str51(address)
      js.check_address(value)
    else
      kind, value = 'object', address_id(address)
      if value == nil then argerror(1, 'connect', 'SocketAddress expected, got ' .. t) end
    end
    local socktype = n >= 2 and socket_type(arg_table(options, 2, n, 'connect')) or 'stream'
    local fd, err = js.connect(kind, value, socktype)
    if fd == nil then return nil, err end
    local sock = newud(SOCKET_MT)
    socket_of[sock] = { fd = fd }
    return sock
  end,
}
