-- The coroutine driver: every handler run, reload() run and library task
-- is a managed coroutine with an id the engine chose.  Each entry point
-- returns the coroutine's status to the engine (coroutine-driver.ts):
--   'pending', operation, args…   suspended in M.suspend: run the operation, then M.resume
--   'wait'                        yielded on its own (a script's coroutine.resume will go on)
--   'error', text                 failed
--   'badreturn', type name        a handler returned no action
--   'done' [, mail state, action] finished (outcome.lua's layout, for a handler)
--   'none'                        there is no such function (reload, task)
--   'gone'                        M.resume of a coroutine that is over
local js, M = ...

local select, rawequal, type, error, setmetatable, unpack = select, rawequal, type, error, setmetatable, table.unpack
local co_create, co_resume, co_status, co_running, co_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.running, coroutine.yield
local errtext, handlers, action_of, new_mail, stale_mail, mail_values, put_mail_values, append_action =
  M.errtext, M.handlers, M.action_of, M.new_mail, M.stale_mail, M.mail_values, M.put_mail_values, M.append_action
local G = _G

local SUSPEND = {}

-- A handler's final status values are laid out in this one table (never
-- read after the unpack that returns them), so that a mail allocates no
-- table for them and the table grows once, not per mail.
local values = { 'done' }
local records = {} -- id -> { id, co, mail }: a mail's is its state (mail == itself)
local record_of = setmetatable({}, { __mode = 'k' })
local mails = {} -- id -> mail state, while the connection lasts

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
  st.reported = true -- until the script changes the state (mail.lua)
  return unpack(values, 1, append_action(values, put_mail_values(values, 1, st), action))
end

-- The main thread runs the mail entry points below without the run-time
-- hook (src/lua/run-limits.ts, hookMain): every coroutine gets its own.
local hook_thread = js.hook_thread
local function start(id, fn, ...)
  local co = co_create(fn)
  hook_thread(co)
  local rec = records[id]
  rec.co = co
  record_of[co] = rec
  return outcome(rec, co_resume(co, ...))
end

-- Mails whose connection ended while no Lua code ran (the engine kept the
-- state their outcome carried): stale now, before any script code runs.
function M.end_mails(...)
  for i = 1, select('#', ...) do
    local st = mails[(select(i, ...))]
    if st ~= nil then
      mails[st.id] = nil
      stale_mail(st)
    end
  end
end
local end_mails = M.end_mails

-- A handler run for the mail `id` (the mail's input stays with the engine
-- until the script reads it: mail.lua); `...`: ended mails (M.end_mails).
function M.dispatch(handler, id, ...)
  if ... ~= nil then end_mails(...) end
  -- The mail's state is its record too (rec.mail == rec); every field set
  -- on the way (co, mail, stale, reported) is there from the start, so
  -- setting it allocates nothing.
  local st = { id = id, stale = false, co = false, mail = false, reported = false }
  st.mail = st
  mails[id] = st
  records[id] = st
  return start(id, handlers[handler], new_mail(st))
end

function M.resume(id, ...)
  local rec = records[id]
  if rec == nil then return 'gone' end
  return outcome(rec, co_resume(rec.co, ...))
end

-- The connection is over: the mail object goes stale.  Returns its last
-- state (outcome.lua's mail state), or nothing when there was no handler run.
function M.close(id)
  records[id] = nil
  local st = mails[id]
  if st == nil then return end
  mails[id] = nil
  stale_mail(st)
  return mail_values(st)
end

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
