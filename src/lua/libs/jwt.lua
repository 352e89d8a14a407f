-- The `jwt` library (docs/libraries.md): an EdDSA-signed JSON Web Token.
-- The JSON texts come from the json library's encoder (json.lua, installed
-- before this), base64url and the signature from jwt.ts.
local js, M = ...

local select = select
local check_count, arg_string, arg_table, argerror = M.check_count, M.arg_string, M.arg_table, M.argerror
local json_encode, json_encode_object = M.json_encode, M.json_encode_object

-- The header always says what the token is (overriding the caller's values).
local HEADER_OVERRIDES = { alg = 'EdDSA', typ = 'JWT' }

_G.jwt = {
  sign = function(...)
    local n = select('#', ...)
    check_count(n, 3, 3)
    local sk, header, payload = ...
    sk = arg_string(sk, 1, n, 'sign')
    if #sk ~= 64 then argerror(1, 'sign', 'Malformed secret key') end
    local header_json = json_encode_object(arg_table(header, 2, n, 'sign'), HEADER_OVERRIDES)
    local payload_json = json_encode(arg_table(payload, 3, n, 'sign'))
    return js.sign(sk, header_json, payload_json)
  end,
}
