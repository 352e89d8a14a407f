-- The metatable of library objects that own something JavaScript must
-- close (a socket descriptor, a database connection): the socket, the
-- control client and the pg connection.  Installed before the libraries;
-- the helper is added to M.
local _, M = ...

-- A metatable with `methods` as __index and `class` as __metatable whose
-- __gc closes what the object owns, once: `close(states[object][field])`,
-- after which the field is nil.  A method that closes early sets the field
-- to nil itself.
function M.owning_metatable(class, methods, states, field, close)
  return {
    __index = methods,
    __metatable = class,
    __gc = function(self)
      local state = states[self]
      if state == nil then return end
      local owned = state[field]
      if owned == nil then return end
      state[field] = nil
      close(owned)
    end,
  }
end
