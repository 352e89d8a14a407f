-- Address objects (docs/configuration.md): what qmqp_resolve, log_resolve
-- and control_resolve return.  An object holds the engine's id of the
-- resolved addresses (address-book.ts); `tostring` shows the first.
local js, M = ...

local select, error, setmetatable = select, error, setmetatable
local checkstring = M.checkstring

-- address object -> id (weak keys); M.address_id(v) reads it for libraries
local address_of = setmetatable({}, { __mode = 'k' })
M.address_of = address_of
local ADDRESS_MT = {
  __name = 'SocketAddress',
  __metatable = 'SocketAddress',
  __tostring = function(a) return js.address_tostring(address_of[a]) end,
}

local function new_address(id)
  local ud = M.newud(ADDRESS_MT)
  address_of[ud] = id
  return ud
end
M.new_address = new_address

-- The engine's id of an address object, or nil for anything else.
M.address_id = function(v) return address_of[v] end

-- The global `KIND_resolve(text)`.
function M.resolver(kind)
  return function(...)
    if select('#', ...) ~= 1 then error('Invalid parameter count', 2) end
    return new_address(js.resolve(kind, checkstring((...), 1, kind .. '_resolve')))
  end
end
