-- The startup API (docs/configuration.md): the globals a config uses while
-- it loads (qmqp_listen, max_size, the resolvers, systemd, metrics_listen),
-- loading the config, and what the engine reads once it ran (qrelay's own
-- settings, log_server).  finish_startup removes the startup-only globals.
local js, M = ...

local type, select, error, pcall, rawequal, tonumber, unpack, floor, fmt =
  type, select, error, pcall, rawequal, tonumber, table.unpack, math.floor, string.format
local argerror, checkstring, str51, errtext, address_of, resolver =
  M.argerror, M.checkstring, M.str51, M.errtext, M.address_of, M.resolver
local G = _G

local SYSTEMD = js.newud({ __name = 'systemd', __metatable = 'systemd', __tostring = function() return 'systemd' end })

-- The handlers qmqp_listen registered; the engine's listener number indexes them.
local handlers = {}
M.handlers = handlers

local function qmqp_listen(...)
  if select('#', ...) ~= 2 then error('Invalid parameter count', 2) end
  local address, handler = ...
  if type(handler) ~= 'function' then argerror(2, 'qmqp_listen', 'function expected') end
  local ms = G.max_size
  local size = tonumber(ms)
  if (type(ms) ~= 'number' and type(ms) ~= 'string') or size == nil then error('`max_size` must be a number', 0) end
  size = size >= 0 and floor(size) or -floor(-size)
  if size < 1024 then error(fmt('`max_size` is too small: %d (allowed: 1024 to 1073741824 bytes)', size), 2) end
  if size > 1073741824 then error(fmt('`max_size` is too large: %d (allowed: 1024 to 1073741824 bytes)', size), 2) end
  if rawequal(address, SYSTEMD) then
    handlers[#handlers + 1] = handler
    js.listen_systemd(#handlers, size)
  elseif type(address) == 'string' then
    handlers[#handlers + 1] = handler
    js.listen(#handlers, address, size)
  else
    argerror(1, 'qmqp_listen', 'path expected')
  end
end

G.qmqp_listen = qmqp_listen
G.max_size = 16777216
G.qmqp_resolve = resolver('qmqp')
G.log_resolve = resolver('log')
G.control_resolve = resolver('control')
G.systemd = SYSTEMD
-- qrelay's addition: serve Prometheus metrics (startup only, like qmqp_listen)
G.metrics_listen = function(...)
  if select('#', ...) ~= 1 then error('Invalid parameter count', 2) end
  local err = js.metrics_listen(checkstring((...), 1, 'metrics_listen'))
  if err then error(err, 2) end
end

function M.load_config(source, chunkname)
  local chunk, err = load(source, chunkname, 'bt')
  if not chunk then return err end
  local ok, e = pcall(chunk)
  if not ok then return errtext(e) end
  return nil
end

-- Removes the startup-only globals; describes `log_server` for the engine.
function M.finish_startup()
  local ls = G.log_server
  G.qmqp_listen, G.max_size, G.qmqp_resolve, G.log_resolve, G.control_resolve = nil, nil, nil, nil, nil
  G.metrics_listen = nil
  if ls == nil then return 'none' end
  if type(ls) == 'string' then return 'string', ls end
  if type(ls) == 'number' then return 'string', str51(ls) end
  local id = address_of[ls]
  if id then return 'address', id end
  return 'invalid', type(ls)
end

-- qrelay's own settings (settings.ts), read once after the file ran: for
-- each global named, its value, tonumber(value) and type(value).
function M.settings(...)
  local values = {}
  for i = 1, select('#', ...) do
    local v = G[(select(i, ...))]
    values[3 * i - 2], values[3 * i - 1], values[3 * i] = v, tonumber(v), type(v)
  end
  return unpack(values, 1, 3 * select('#', ...))
end
