-- The `control_client` library (docs/libraries.md): clients send
-- beng-proxy control datagrams built with chainable builders.  A client
-- owns a connected, non-blocking datagram socket (closed when the client is
-- collected); a builder is a list of encoded packets (control_client.ts).
local js, M = ...

local select, type, next, setmetatable, concat = select, type, next, setmetatable, table.concat
local check_count, check_self, arg_string, argerror, str51, address_id, newud, owning_metatable =
  M.check_count, M.check_self, M.arg_string, M.argerror, M.str51, M.address_id, M.newud, M.owning_metatable

-- The length field has 16 bits; the original truncated longer payloads'
-- lengths (docs/differences.md).
local MAX_PAYLOAD = 65535

-- Builder methods that emit one packet per argument, and their commands.
local SIMPLE_COMMANDS = {
  fade_children = 8,
  flush_filter_cache = 12,
  discard_session = 14,
  flush_http_cache = 15,
  terminate_children = 16,
  disconnect_database = 20,
  reset_limiter = 22,
  reject_client = 23,
  tarpit_client = 24,
}
local CANCEL_JOB = 25

local packets_of = setmetatable({}, { __mode = 'k' }) -- builder -> encoded packets
local client_of = setmetatable({}, { __mode = 'k' }) -- client -> { fd = … }

-- Appends a packet; argument `i` of method `fname` supplied the payload.
local function add_packet(packets, command, payload, i, fname)
  if #payload > MAX_PAYLOAD then argerror(i, fname, 'Payload is too long', 3) end
  packets[#packets + 1] = js.packet(command, payload)
end

local BUILDER_METHODS = {}

for fname, command in next, SIMPLE_COMMANDS do
  BUILDER_METHODS[fname] = function(self, ...)
    local packets = check_self(self, packets_of, 'control_builder', fname)
    local n = select('#', ...)
    check_count(n, 1, math.huge)
    local args = { ... }
    for i = 1, n do
      local v = args[i]
      local t = type(v)
      -- anything but a string or number is an empty payload (no error)
      add_packet(packets, command, t == 'string' and v or t == 'number' and str51(v) or '', i, fname)
    end
    return self
  end
end

function BUILDER_METHODS.cancel_job(self, ...)
  local packets = check_self(self, packets_of, 'control_builder', 'cancel_job')
  local n = select('#', ...)
  check_count(n, 2, 2)
  local partition, job = ...
  partition = arg_string(partition, 1, n, 'cancel_job')
  job = arg_string(job, 2, n, 'cancel_job')
  add_packet(packets, CANCEL_JOB, partition .. '\0' .. job, 2, 'cancel_job')
  return self
end

local BUILDER_MT = { __index = BUILDER_METHODS, __metatable = 'control_builder' }

local CLIENT_METHODS = {}

function CLIENT_METHODS.build(self, ...)
  check_self(self, client_of, 'control_client', 'build')
  check_count(select('#', ...), 0, 1)
  local builder = newud(BUILDER_MT)
  packets_of[builder] = {}
  return builder
end

-- true, or nil and `send() failed: …`; a builder can be sent again.
function CLIENT_METHODS.send(self, ...)
  local client = check_self(self, client_of, 'control_client', 'send')
  local n = select('#', ...)
  check_count(n, 1, 1)
  local builder = ...
  local packets = packets_of[builder]
  if packets == nil then argerror(1, 'send', 'control_builder expected, got ' .. type(builder)) end
  return js.send(client.fd or -1, concat(packets))
end

local CLIENT_MT = owning_metatable('control_client', CLIENT_METHODS, client_of, 'fd', js.close)

_G.control_client = {
  -- A client for an address string or object; nil and a message on errors.
  new = function(_, ...)
    local n = select('#', ...)
    check_count(n, 1, 1)
    local address = ...
    local t = type(address)
    local fd, err
    if t == 'string' or t == 'number' then
      fd, err = js.open_string(str51(address))
    else
      local id = address_id(address)
      if id == nil then argerror(1, 'new', 'SocketAddress expected, got ' .. t) end
      fd, err = js.open_address(id)
    end
    if fd == nil then return nil, err end
    local client = newud(CLIENT_MT)
    client_of[client] = { fd = fd }
    return client
  end,
}
