-- Scripts see the real file system (docs/configuration.md): relative names resolve
-- against the process's working directory (the config's folder while it
-- loads, `/` afterwards).  Lua's own io library works on an in-memory file
-- system, so a file is copied in ("staged") when opened and copied back
-- when a handle opened for writing is flushed or closed.
local js, M = ...

local type, error, select, load, setmetatable = type, error, select, load, setmetatable
local io_open, io_lines, io_input, io_output = io.open, io.lines, io.input, io.output
local G = _G

local written = setmetatable({}, { __mode = 'k' }) -- handle -> real path

-- real path -> staged path, or nil, message, errno (as io.open reports it)
local function stage(path, must_exist)
  return js.stage(path, must_exist)
end

io.open = function(path, mode)
  if type(path) ~= 'string' then return io_open(path, mode) end
  mode = mode or 'r'
  local writing = mode:find('[wa+]') ~= nil
  local staged, message, errno = stage(path, not writing or mode:find('r') ~= nil)
  if not staged then return nil, message, errno end
  local file, err, code = io_open(staged, mode)
  if not file then return nil, path .. ': ' .. tostring(err):gsub('^.-: ', ''), code end
  if writing then written[file] = staged end
  return file
end

-- Copy written data back whenever a written handle is flushed or closed.
do
  local probe = io.tmpfile()
  local methods = getmetatable(probe).__index
  probe:close()
  local close, flush = methods.close, methods.flush
  methods.close = function(file, ...)
    local results = table.pack(close(file, ...))
    local staged = written[file]
    if staged then written[file] = nil js.unstage(staged) end
    return table.unpack(results, 1, results.n)
  end
  methods.flush = function(file, ...)
    local results = table.pack(flush(file, ...))
    local staged = written[file]
    if staged then js.unstage(staged) end
    return table.unpack(results, 1, results.n)
  end
end

io.lines = function(path, ...)
  if path == nil then return io_lines() end
  local staged, message = stage(path, true)
  if not staged then error(message, 2) end
  return io_lines(staged, ...)
end

io.input = function(file)
  if type(file) == 'string' then
    local staged, message = stage(file, true)
    if not staged then error(message, 2) end
    return io_input(staged)
  end
  return io_input(file)
end

io.output = function(file)
  if type(file) == 'string' then
    local handle, message = io.open(file, 'w')
    if not handle then error(message, 2) end
    return io_output(handle)
  end
  return io_output(file)
end

local function read_source(path)
  local staged, message = stage(path, true)
  if not staged then return nil, 'cannot open ' .. message end
  local file = io_open(staged, 'rb')
  local source = file:read('a')
  file:close()
  return source
end

G.loadfile = function(path, mode, env)
  if path == nil then return nil, 'loading from stdin is not supported' end
  local source, message = read_source(path)
  if not source then return nil, message end
  if env ~= nil then return load(source, '@' .. path, mode or 'bt', env) end
  return load(source, '@' .. path, mode or 'bt')
end

G.dofile = function(path)
  local chunk, message = G.loadfile(path)
  if not chunk then error(message, 2) end
  return chunk()
end

-- require: Lua modules along package.path, found on the real file system.
local function search_path(name, path)
  name = name:gsub('%.', '/')
  local tried = {}
  for template in path:gmatch('[^;]+') do
    local candidate = template:gsub('%?', name)
    if js.exists(candidate) then return candidate end
    tried[#tried + 1] = "\n\tno file '" .. candidate .. "'"
  end
  return nil, table.concat(tried)
end

package.searchpath = function(name, path, sep, rep)
  return search_path(name, path)
end

package.searchers[2] = function(name)
  local found, message = search_path(name, package.path)
  if not found then return message end
  local chunk, err = G.loadfile(found)
  if not chunk then error(("error loading module '%s' from file '%s':\n\t%s"):format(name, found, err), 2) end
  return chunk, found
end
-- C modules cannot be loaded into WebAssembly.
package.searchers[3] = function(name) return "\n\tno C module '" .. name .. "'" end
package.searchers[4] = nil
