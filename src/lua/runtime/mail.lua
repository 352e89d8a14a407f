-- The mail object (docs/mail.md): what a handler gets.  Its state (sender,
-- recipients, credentials, account, inserted headers) lives in a table
-- the driver keeps while the connection lasts; when it ends the object
-- goes stale.  The action constructors (actions.lua) are its methods.
-- What the client sent (sender, recipients, credentials) is fetched from
-- the engine on the first read of any of them (js.mail_input), so a
-- handler that reads none costs no strings; a script sees no difference.
local js, M = ...

local type, select, error, setmetatable, find, unpack = type, select, error, setmetatable, string.find, table.unpack
local argerror, checkstring, str51, actions, newud = M.argerror, M.checkstring, M.str51, M.actions, M.newud
local mail_input, mail_changed = js.mail_input, js.mail_changed

-- The state changed after the outcome carried it (driver.lua sets
-- `reported`): the engine must read it again at the end.
local function changed(st)
  if st.reported then
    st.reported = nil
    mail_changed(st.id)
  end
end

local mail_of = setmetatable({}, { __mode = 'k' })
local MAIL_MT = { __name = 'qrelay.mail', __metatable = 'qrelay.mail' }

local function live_mail(self, level)
  local st = mail_of[self]
  if st == nil then argerror(1, 'insert_header', 'qrelay.mail expected', level + 1) end
  if st.stale then error('Stale object', level + 1) end
  return st
end

-- Header names and values found legal, so that a handler inserting the
-- same header each time checks it once; forgotten all at once when they
-- hold too many (as actions.lua's checked addresses).  Only short ones:
-- what they keep alive stays under 1024 x 256 bytes.
local legal_names, legal_values, legal_count, LEGAL_LIMIT, LEGAL_LENGTH = {}, {}, 0, 1024, 256
local function legal(name, value)
  if #name + #value > LEGAL_LENGTH then return end
  if legal_count >= LEGAL_LIMIT then legal_names, legal_values, legal_count = {}, {}, 0 end
  legal_count = legal_count + 1
  legal_names[name], legal_values[value] = true, true
end

local function insert_header(self, ...)
  if select('#', ...) ~= 2 then error('Invalid parameters', 2) end
  local name, value = ...
  name, value = str51(name), str51(value)
  if not (legal_names[name] and legal_values[value]) then
    if type(name) ~= 'string' or name == '' or find(name, '[^!-9;-~]') then argerror(1, 'insert_header', 'Illegal header name') end
    if type(value) ~= 'string' then argerror(2, 'insert_header', 'Illegal header value: string expected, got ' .. type(value)) end
    if find(value, '[^ -~]') then argerror(2, 'insert_header', 'Illegal header value') end
    legal(name, value)
  end
  local st = live_mail(self, 2)
  local headers = st.headers
  if headers == nil then
    headers = {}
    st.headers = headers
  elseif #headers >= 16 then
    error('Too many headers', 2)
  end
  headers[#headers + 1] = name .. ': ' .. value .. '\r\n'
  changed(st)
end

local function fill_input(st, sender, pid, uid, gid, ...)
  st.loaded, st.input_sender, st.pid, st.uid, st.gid, st.recipients = true, sender, pid, uid, gid, { ... }
  return st
end

-- The state with what the client sent, fetched once.
local function input(st)
  if st.loaded then return st end
  return fill_input(st, mail_input(st.id))
end

local METHODS = {
  insert_header = insert_header,
  connect = actions.connect,
  discard = actions.discard,
  reject = actions.reject,
  exec = actions.exec,
  exec_raw = actions.exec_raw,
}

MAIL_MT.__index = function(self, key)
  local kt = type(key)
  if kt == 'number' then key = str51(key)
  elseif kt ~= 'string' then argerror(2, '__index', 'string expected, got ' .. kt) end
  local st = mail_of[self]
  if st.stale then error('Stale object', 2) end
  local method = METHODS[key]
  if method then return method end
  if key == 'sender' then return st.sender or input(st).input_sender end
  if key == 'recipients' then return { unpack(input(st).recipients) } end
  if key == 'pid' then return input(st).pid end
  if key == 'uid' then return input(st).uid end
  if key == 'gid' then return input(st).gid end
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
    changed(st)
  elseif key == 'account' then
    if value == nil then
      st.account = nil
      changed(st)
      return
    end
    value = checkstring(value, 3, '__newindex')
    if value == '' then argerror(3, '__newindex', 'Empty string not allowed') end
    st.account = value
    changed(st)
  else
    error('Cannot change this attribute', 2)
  end
end

-- A mail object for the state `st` ({ id = id, stale = false }: the engine's id of the mail).
-- Besides `id` the state holds, once set: sender (assigned), account,
-- headers; what input() fetched; reported (driver.lua: the outcome carried
-- it); and the driver's own fields (it is the mail's record there: co, mail).
function M.new_mail(st)
  local ud = newud(MAIL_MT)
  mail_of[ud] = st
  return ud
end

-- The connection is over: the object goes stale, its cgroup objects too.
function M.stale_mail(st)
  st.stale = true
  if st.cgroup then M.close_cgroup(st.cgroup) end
end

-- Overridden by the cgroup library; nil means "no cgroup".
function M.new_cgroup(st) return nil end
function M.close_cgroup(c) end
