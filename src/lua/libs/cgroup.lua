-- m.cgroup (docs/mail.md): cgroup objects (`path`, `parent`,
-- `xattr`) and xattr tables.  All objects created for one mail form a
-- family that goes stale together when the connection ends; their
-- directory descriptors are closed then.  Called as chunk(js, M).
local js, M = ...

local type, error, setmetatable, find = type, error, setmetatable, string.find
local checkstring, newud = M.checkstring, M.newud

local cgroup_of = setmetatable({}, { __mode = 'k' }) -- cgroup userdata -> state
local xattr_of = setmetatable({}, { __mode = 'k' }) -- xattr userdata -> state

local CGROUP_MT = { __name = 'qrelay.cgroup', __metatable = 'qrelay.cgroup' }
local XATTR_MT = { __name = 'qrelay.xattr', __metatable = 'qrelay.xattr' }

local function join(family, st)
  family[#family + 1] = st
  st.family = family
  return st
end

local function new_cgroup(path, family)
  local ud = newud(CGROUP_MT)
  cgroup_of[ud] = join(family, { path = path })
  return ud
end

local function new_xattr(path, family)
  -- raises `Failed to open "…": …` (no position: a system error)
  local fd = js.open_directory(path)
  local ud = newud(XATTR_MT)
  xattr_of[ud] = join(family, { fd = fd })
  return ud
end

-- The path cut at its last `/`; nil when that `/` is the first character or missing.
local function parent_path(path)
  local last
  local i = find(path, '/', 1, true)
  while i do
    last = i
    i = find(path, '/', i + 1, true)
  end
  if last == nil or last == 1 then return nil end
  return path:sub(1, last - 1)
end

CGROUP_MT.__index = function(self, key)
  local st = cgroup_of[self]
  if st.stale then error('Stale object', 2) end
  if key == 'path' then return st.path end
  if key == 'parent' then
    if st.parent == nil then
      local p = parent_path(st.path)
      st.parent = p and new_cgroup(p, st.family) or false
    end
    return st.parent or nil
  end
  if key == 'xattr' then
    if st.xattr == nil then st.xattr = new_xattr(st.path, st.family) end
    return st.xattr
  end
  return nil
end

XATTR_MT.__index = function(self, key)
  local st = xattr_of[self]
  if st.stale then error('Stale object', 2) end
  return js.xattr(st.fd, checkstring(key, 2, '__index'))
end

-- First access of m.cgroup: the object, or nil for "no cgroup".
function M.new_cgroup(mail)
  local path = js.cgroup_path(mail.id)
  if path == nil then return nil end
  return new_cgroup(path, {})
end

-- The mail is over: every object of the family goes stale, descriptors close.
function M.close_cgroup(obj)
  local st = cgroup_of[obj]
  if st == nil then return end
  local family = st.family
  for i = 1, #family do
    local member = family[i]
    member.stale = true
    if member.fd then
      js.close_fd(member.fd)
      member.fd = nil
    end
  end
end
