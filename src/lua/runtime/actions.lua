-- Action objects (docs/actions.md): what m:connect, m:exec, m:exec_raw,
-- m:discard and m:reject return, with their arguments and options checked.
-- An action is a userdata; its fields stay in a weak table (M.action_of)
-- until the driver hands them to the engine (outcome.lua).
local js, M = ...

local type, select, error, tonumber, next, setmetatable = type, select, error, tonumber, next, setmetatable
local argerror, str51, address_of, newud = M.argerror, M.str51, M.address_of, M.newud

local action_of = setmetatable({}, { __mode = 'k' })
M.action_of = action_of
local ACTION_MT = { __name = 'qrelay.action', __metatable = 'qrelay.action' }
local function new_action(a)
  local ud = newud(ACTION_MT)
  action_of[ud] = a
  return ud
end

local function no_arguments(fname, ...)
  if select('#', ...) ~= 0 then error('Invalid parameters', 3) end
end

local DISCARD, REJECT = { 'discard' }, { 'reject' }

-- A number option in seconds: a number or numeric string, normal, 0 < t <= 3600.
local function seconds_option(value)
  local t = tonumber(value)
  if (type(value) ~= 'number' and type(value) ~= 'string') or t == nil then error('Timeout is not a number', 6) end
  -- normal, positive, at most an hour (rejects 0, NaN, infinities, subnormals)
  if not (t >= 2.2250738585072014e-308 and t <= 3600) then error('Bad timeout value', 6) end
  return t
end

-- Checks an options table: each key a string handled by `handlers[key]`.
local function parse_options(options, action, handlers)
  for key, value in next, options do
    if type(key) ~= 'string' then error('Option key is not a string', 4) end
    local handler = handlers[key]
    if handler == nil then error('Unknown option', 4) end
    handler(action, value)
  end
end

local EXEC_OPTIONS = {
  env = function(action, value)
    if type(value) ~= 'table' then error('env must be a table', 5) end
    local env, n = {}, 0
    for name, v in next, value do
      if type(name) ~= 'string' then error('Environment name is not a string', 5) end
      if type(v) ~= 'string' then error('Environment value is not a string', 5) end
      n = n + 1
      if n > 32 then error('Too many environment variables', 5) end
      env[n] = name .. '=' .. v
    end
    action.env = env
  end,
  timeout = function(action, value) action.timeout = seconds_option(value) end,
}

local CONNECT_OPTIONS = {
  connect_timeout = function(action, value) action.connect_timeout = seconds_option(value) end,
  timeout = function(action, value) action.timeout = seconds_option(value) end,
  order = function(action, value)
    if value ~= 'sequential' and value ~= 'random' then error('Bad order value', 5) end
    action.order = value
  end,
}

local MAX_SERVERS = 32

-- Address strings the engine accepted (js.check_address raises for the
-- others), so that a handler relaying to the same address each time asks
-- once; forgotten all at once when it holds too many.
local checked, checked_count, CHECKED_LIMIT = {}, 0, 1024
local function check_address(address)
  if checked[address] then return end
  js.check_address(address)
  if checked_count >= CHECKED_LIMIT then checked, checked_count = {}, 0 end
  checked[address] = true
  checked_count = checked_count + 1
end

-- One server of `connect` as the engine reads it: 'string', text or 'object', id.
-- `n` is its argument number, `element` its index in a list argument.
local function server_of(address, n, element)
  local t = type(address)
  if t == 'string' or t == 'number' then
    address = str51(address)
    check_address(address)
    return 'string', address
  end
  local id = address_of[address]
  if id == nil then
    local got = t == 'userdata' and 'userdata' or t
    argerror(n, 'connect', 'SocketAddress expected, got ' .. got .. (element and ' at index ' .. element or ''), 3)
  end
  return 'object', id
end

-- m:connect(address, ...) or m:connect({address, ...}, [options]); a table
-- after two or more addresses is the options table.
local function connect(self, ...)
  local n = select('#', ...)
  if n == 0 then error('Invalid parameters', 2) end
  local list, options = ...
  local listed = type(list) == 'table'
  if n == 1 and not listed then
    -- one address: the same as the general case below, without its tables
    -- (nil is an argument too: `SocketAddress expected, got nil`, as the original says)
    return new_action({ 'connect', servers = { server_of(list, 1, nil) } })
  end
  local count
  if listed then
    if n > 2 or (n == 2 and type(options) ~= 'table') then error('Invalid parameters', 2) end
    if list[1] == nil then argerror(1, 'connect', 'SocketAddress expected, got table') end
    count = #list
  else
    -- every argument is a server (a nil one too), but a last table is the options
    list, options, count = { ... }, nil, n
    if n >= 2 and type(list[n]) == 'table' then
      options = list[n]
      list[n] = nil
      count = n - 1
    end
  end
  if count > MAX_SERVERS then argerror(listed and 1 or MAX_SERVERS + 1, 'connect', 'Too many servers') end
  local servers = {}
  for i = 1, count do
    servers[2 * i - 1], servers[2 * i] = server_of(list[i], listed and 1 or i, listed and i or nil)
  end
  local action = { 'connect', servers = servers }
  if options then parse_options(options, action, CONNECT_OPTIONS) end
  return new_action(action)
end

local function make_exec(kind)
  return function(self, ...)
    local n = select('#', ...)
    if n == 0 then error('Not enough parameters', 2) end
    local last = select(n, ...)
    local options
    if n >= 2 and type(last) == 'table' then
      options = last
      n = n - 1
    end
    if n > 32 then argerror(33, kind, 'Too many arguments') end
    local argv = {}
    for i = 1, n do
      local v = select(i, ...)
      local t = type(v)
      if t == 'string' then argv[i] = v
      elseif t == 'number' then argv[i] = str51(v)
      else argerror(i, kind, 'string expected, got ' .. t) end
    end
    local action = { kind, argv = argv }
    if options then parse_options(options, action, EXEC_OPTIONS) end
    return new_action(action)
  end
end

-- The action constructors, methods of the mail object (mail.lua).
M.actions = {
  connect = connect,
  discard = function(self, ...) no_arguments('discard', ...) return new_action(DISCARD) end,
  reject = function(self, ...) no_arguments('reject', ...) return new_action(REJECT) end,
  exec = make_exec('exec'),
  exec_raw = make_exec('exec_raw'),
}
