-- qrelay's Lua runtime: the mail object, action objects, the startup API
-- and the coroutine driver.  It runs once per engine with `js`, a table of
-- bridged primitives, and returns the entry points the engine calls.
-- Every standard function used here is captured before user code runs.
local js = ...

local type, select, error, pcall, rawequal, tostring, tonumber, setmetatable, next =
  type, select, error, pcall, rawequal, tostring, tonumber, setmetatable, next
local co_create, co_resume, co_status, co_running, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.running, coroutine.yield
local fmt, find, unpack, floor, huge, tointeger =
  string.format, string.find, table.unpack, math.floor, math.huge, math.tointeger
local G = _G

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
M.newud = js.newud

-- A string or number argument as a string, else a type error.
local function checkstring(v, n, fname, level)
  local t = type(v)
  if t == 'string' then return v end
  if t == 'number' then return str51(v) end
  argerror(n, fname, 'string expected, got ' .. (t == 'nil' and 'nil' or t), (level or 2) + 1)
end
M.checkstring = checkstring

local function errtext(e)
  local t = type(e)
  if t == 'string' then return e end
  if t == 'number' then return str51(e) end
  return t
end

-- ---------------------------------------------------------------------
-- Address objects (from the startup resolvers)

local address_of = setmetatable({}, { __mode = 'k' })
local ADDRESS_MT = {
  __name = 'SocketAddress',
  __metatable = 'SocketAddress',
  __tostring = function(a) return js.address_tostring(address_of[a]) end,
}
local function new_address(id)
  local ud = js.newud(ADDRESS_MT)
  address_of[ud] = id
  return ud
end
-- The engine's id of an address object, or nil for anything else.
M.address_id = function(v) return address_of[v] end
M.new_address = new_address

local function make_resolver(kind)
  return function(...)
    if select('#', ...) ~= 1 then error('Invalid parameter count', 2) end
    return new_address(js.resolve(kind, checkstring((...), 1, kind .. '_resolve')))
  end
end

-- ---------------------------------------------------------------------
-- Startup API

local SYSTEMD = js.newud({ __name = 'systemd', __metatable = 'systemd', __tostring = function() return 'systemd' end })
local handlers = {}

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
G.qmqp_resolve = make_resolver('qmqp')
G.log_resolve = make_resolver('log')
G.control_resolve = make_resolver('control')
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

-- The run-time limit and the heap cap are checked by a count hook that
-- every coroutine inherits; a script must not be able to remove it.  So
-- debug.sethook only records what the script asked for (debug.gethook
-- reports it back), and never replaces qrelay's hook.
local script_hooks = setmetatable({}, { __mode = 'k' })
local function hook_thread(...)
  if type((...)) == 'thread' then return (...), 1 end
  return (co_running()), 0
end
G.debug.sethook = function(...)
  local thread, skip = hook_thread(...)
  local f, mask, count = select(skip + 1, ...)
  script_hooks[thread] = f and { f, mask, count } or nil
end
G.debug.gethook = function(...)
  local h = script_hooks[(hook_thread(...))]
  if h then return h[1], h[2], h[3] end
  return nil
end

-- ---------------------------------------------------------------------
-- Actions

local action_of = setmetatable({}, { __mode = 'k' })
local ACTION_MT = { __name = 'qrelay.action', __metatable = 'qrelay.action' }
local function new_action(a)
  local ud = js.newud(ACTION_MT)
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

-- One server of `connect` as the engine reads it: 'string', text or 'object', id.
-- `n` is its argument number, `element` its index in a list argument.
local function server_of(address, n, element)
  local t = type(address)
  if t == 'string' or t == 'number' then
    address = str51(address)
    js.check_address(address)
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
  if listed then
    if n > 2 or (n == 2 and type(options) ~= 'table') then error('Invalid parameters', 2) end
    if list[1] == nil then argerror(1, 'connect', 'SocketAddress expected, got table') end
  else
    list, options = { ... }, nil
    if n >= 2 and type(list[n]) == 'table' then
      options = list[n]
      list[n] = nil
    end
  end
  local count = #list
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

-- Flattens an action for the engine: kind, then the kind's fields.
local function action_values(a)
  local kind = a[1]
  if kind == 'connect' then
    local servers = a.servers
    local n = #servers
    return kind, a.order or 'sequential', a.connect_timeout or false, a.timeout or false, n // 2, unpack(servers, 1, n)
  end
  if kind == 'exec' or kind == 'exec_raw' then
    local env = a.env
    local argv = a.argv
    local n = #argv
    local values = { kind, a.timeout or false, n }
    for i = 1, n do values[3 + i] = argv[i] end
    if env then
      values[4 + n] = #env
      for i = 1, #env do values[4 + n + i] = env[i] end
    else
      values[4 + n] = false
    end
    return unpack(values)
  end
  return kind
end

-- ---------------------------------------------------------------------
-- The mail object

local mail_of = setmetatable({}, { __mode = 'k' })
local MAIL_MT = { __name = 'qrelay.mail', __metatable = 'qrelay.mail' }
local mails = {} -- id -> state, while the connection lasts

local function live_mail(self, level)
  local st = mail_of[self]
  if st == nil then argerror(1, 'insert_header', 'qrelay.mail expected', level + 1) end
  if st.stale then error('Stale object', level + 1) end
  return st
end

local function insert_header(self, ...)
  if select('#', ...) ~= 2 then error('Invalid parameters', 2) end
  local name, value = ...
  name = str51(name)
  if type(name) ~= 'string' or name == '' or find(name, '[^!-9;-~]') then argerror(1, 'insert_header', 'Illegal header name') end
  value = str51(value)
  if type(value) ~= 'string' then argerror(2, 'insert_header', 'Illegal header value: string expected, got ' .. type(value)) end
  if find(value, '[^ -~]') then argerror(2, 'insert_header', 'Illegal header value') end
  local st = live_mail(self, 2)
  local headers = st.headers
  if #headers >= 16 then error('Too many headers', 2) end
  headers[#headers + 1] = name .. ': ' .. value .. '\r\n'
end

local METHODS = {
  insert_header = insert_header,
  connect = connect,
  discard = function(self, ...) no_arguments('discard', ...) return new_action(DISCARD) end,
  reject = function(self, ...) no_arguments('reject', ...) return new_action(REJECT) end,
  exec = make_exec('exec'),
  exec_raw = make_exec('exec_raw'),
}

MAIL_MT.__index = function(self, key)
  local kt = type(key)
  if kt == 'number' then key = str51(key)
  elseif kt ~= 'string' then argerror(2, '__index', 'string expected, got ' .. kt) end
  local st = mail_of[self]
  if st.stale then error('Stale object', 2) end
  local method = METHODS[key]
  if method then return method end
  if key == 'sender' then return st.sender end
  if key == 'recipients' then return { unpack(st.recipients) } end
  if key == 'pid' then return st.pid end
  if key == 'uid' then return st.uid end
  if key == 'gid' then return st.gid end
  if key == 'cgroup' then
    if st.cgroup == nil then st.cgroup = M.new_cgroup(st) or false end
    return st.cgroup or nil
  end
  error('Unknown attribute', 2)
end

MAIL_MT.__newindex = function(self, key, value)
  local st = mail_of[self]
  if st.stale then error('Stale object', 2) end
  if type(key) ~= 'string' then argerror(2, '__newindex', 'string expected, got ' .. type(key)) end
  if key == 'sender' then
    value = checkstring(value, 3, '__newindex')
    if not js.valid_address(value) then argerror(3, '__newindex', 'Malformed email address') end
    st.sender = value
  elseif key == 'account' then
    if value == nil then st.account = nil return end
    value = checkstring(value, 3, '__newindex')
    if value == '' then argerror(3, '__newindex', 'Empty string not allowed') end
    st.account = value
  else
    error('Cannot change this attribute', 2)
  end
end

-- Overridden by the cgroup module; nil means "no cgroup".
function M.new_cgroup(st) return nil end

-- The mail as the engine needs it: sender, account, header count, headers.
local function snapshot(st)
  local headers = st.headers
  return st.sender, st.account or false, #headers, unpack(headers)
end

-- ---------------------------------------------------------------------
-- Coroutine driver: one managed coroutine per handler run and reload run.

local SUSPEND = {}
local records = {} -- id -> { id, co, mail }
local record_of = setmetatable({}, { __mode = 'k' })

local function outcome(rec, ok, ...)
  if not ok then
    records[rec.id] = nil
    return 'error', errtext((...))
  end
  if co_status(rec.co) == 'suspended' then
    if rawequal((...), SUSPEND) then return 'pending', select(2, ...) end
    return 'wait'
  end
  records[rec.id] = nil
  local n = select('#', ...)
  local action = n > 0 and action_of[(select(n, ...))]
  if not action then
    local got = n == 0 and 'nothing' or type((select(n, ...)))
    return 'badreturn', got
  end
  local st = rec.mail
  if st == nil then return 'done' end
  local values = { 'done', snapshot(st) }
  local n = #values
  local tail = { action_values(action) }
  for i = 1, #tail do values[n + i] = tail[i] end
  return unpack(values, 1, n + #tail)
end

local function start(id, fn, ...)
  local co = co_create(fn)
  local rec = records[id]
  rec.co = co
  record_of[co] = rec
  return outcome(rec, co_resume(co, ...))
end

function M.dispatch(handler, id, sender, pid, uid, gid, ...)
  local st = { sender = sender, recipients = { ... }, pid = pid, uid = uid, gid = gid, headers = {}, id = id }
  local ud = js.newud(MAIL_MT)
  mail_of[ud] = st
  mails[id] = st
  records[id] = { id = id, mail = st }
  return start(id, handlers[handler], ud)
end

function M.resume(id, ...)
  local rec = records[id]
  if rec == nil then return 'gone' end
  return outcome(rec, co_resume(rec.co, ...))
end

-- The connection is over: the mail object goes stale.  Returns its last state.
function M.close(id)
  records[id] = nil
  local st = mails[id]
  if st == nil then return end
  mails[id] = nil
  st.stale = true
  if st.cgroup then M.close_cgroup(st.cgroup) end
  return snapshot(st)
end

function M.close_cgroup(c) end

local function start_background(id, f)
  if f == nil then return 'none' end
  records[id] = { id = id }
  return start(id, function() f() end)
end

function M.reload(id)
  return start_background(id, G.reload)
end

-- Functions a library runs later, each time as a managed coroutine of its
-- own (e.g. NOTIFY callbacks): M.add_task(fn) gives the number the engine's
-- runTask(number) takes.
local tasks = {}
function M.add_task(fn)
  tasks[#tasks + 1] = fn
  return #tasks
end

function M.run_task(id, task)
  return start_background(id, tasks[task])
end

-- Library functions that wait for the engine yield through this.
function M.suspend(...)
  local co, main = co_running()
  if main or record_of[co] == nil then
    error('attempt to yield across a C-call boundary', 3)
  end
  return co_yield(SUSPEND, ...)
end

-- A handler coroutine resumed by script code: tell the engine how it went.
local function notify(rec, ok, ...)
  js.completed(rec.id, outcome(rec, ok, ...))
  return ok, ...
end

coroutine.resume = function(co, ...)
  local rec = record_of[co]
  if rec == nil or records[rec.id] ~= rec then return co_resume(co, ...) end
  return notify(rec, co_resume(co, ...))
end

G.sleep = function(...)
  local n = select('#', ...)
  if n > 1 then error('Too many parameters', 2) end
  local seconds = tonumber((...))
  if seconds == nil then argerror(1, 'sleep', 'number expected, got ' .. type((...))) end
  if seconds < 0 then argerror(1, 'sleep', 'Positive number expected') end
  M.suspend('sleep', seconds)
end

G.print = function(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = G.tostring((select(i, ...))) end
  js.stdout(table.concat(parts, '\t') .. '\n')
end

G.os.exit = function(code)
  if code == true or code == nil then code = 0 elseif code == false then code = 1 end
  js.exit(tonumber(code) or 0)
end

return M
