-- The values that cross from Lua to TypeScript when a handler is done:
-- the mail's state and its action, flattened into a list of plain values.
-- This file writes the layout; src/lua/outcome-layout.ts reads it and
-- describes the same layout.  test/lua-outcome-layout.test.ts breaks when
-- one side changes alone.
--
--   mail state   sender | false, account | false, N, header_1 … header_N
--                (sender false: the client's, not changed by the script)
--   action       kind, then by kind:
--     discard, reject    (nothing)
--     connect            order, connect_timeout | false, timeout | false, N,
--                        (server kind, server value) × N
--                        ('string', address text | 'object', address object id)
--     exec, exec_raw     timeout | false, N, argv_1 … argv_N,
--                        M | false, env_1 … env_M   (false: no env option)
--
-- Timeouts are in seconds; false is "not given" (the engine's default).
local _, M = ...

local unpack = table.unpack

-- The mail state's values.
function M.mail_values(st)
  local headers = st.headers
  if headers == nil then return st.sender or false, st.account or false, 0 end
  return st.sender or false, st.account or false, #headers, unpack(headers)
end

-- The same values, put into `values` after index `n`; returns the new length.
function M.put_mail_values(values, n, st)
  local headers = st.headers
  local count = headers == nil and 0 or #headers
  values[n + 1], values[n + 2], values[n + 3] = st.sender or false, st.account or false, count
  for i = 1, count do values[n + 3 + i] = headers[i] end
  return n + 3 + count
end

-- The action's values, appended to `values` after index `n`; returns the new length.
function M.append_action(values, n, a)
  local kind = a[1]
  values[n + 1] = kind
  if kind == 'connect' then
    local servers = a.servers
    local count = #servers
    values[n + 2], values[n + 3], values[n + 4], values[n + 5] = a.order or 'sequential', a.connect_timeout or false, a.timeout or false, count // 2
    for i = 1, count do values[n + 5 + i] = servers[i] end
    return n + 5 + count
  end
  if kind == 'exec' or kind == 'exec_raw' then
    local argv, env = a.argv, a.env
    local argc = #argv
    values[n + 2], values[n + 3] = a.timeout or false, argc
    for i = 1, argc do values[n + 3 + i] = argv[i] end
    n = n + 3 + argc
    if env == nil then
      values[n + 1] = false
      return n + 1
    end
    values[n + 1] = #env
    for i = 1, #env do values[n + 1 + i] = env[i] end
    return n + 1 + #env
  end
  return n + 1
end
