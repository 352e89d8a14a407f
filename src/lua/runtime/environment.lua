-- What the runtime changes in the script's global environment besides the
-- startup API: sleep, print and os.exit through the engine, and the debug
-- hooks, which must not reach qrelay's own.
local js, M = ...

local type, select, error, tonumber, setmetatable = type, select, error, tonumber, setmetatable
local co_running = coroutine.running
local argerror, suspend = M.argerror, M.suspend
local G = _G

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

G.sleep = function(...)
  local n = select('#', ...)
  if n > 1 then error('Too many parameters', 2) end
  local seconds = tonumber((...))
  if seconds == nil then argerror(1, 'sleep', 'number expected, got ' .. type((...))) end
  if seconds < 0 then argerror(1, 'sleep', 'Positive number expected') end
  suspend('sleep', seconds)
end

G.print = function(...)
  local n = select('#', ...)
  local parts = {}
  for i = 1, n do parts[i] = G.tostring((select(i, ...))) end
  js.stdout(table.concat(parts, '\t') .. '\n')
end

-- WebAssembly has no shell.  wasmoon's own os.execute throws a JavaScript
-- error through the Lua state, which pcall cannot catch; this one answers
-- like a Lua without a shell (no argument: false) or raises a Lua error,
-- as io.popen does ('popen' not supported).
G.os.execute = function(...)
  if select('#', ...) == 0 then return false end
  error("'os.execute' not supported", 2)
end

G.os.exit = function(code)
  if code == true or code == nil then code = 0 elseif code == false then code = 1 end
  js.exit(tonumber(code) or 0)
end
