-- The `sodium` library (docs/libraries.md): plain functions on binary
-- strings.  Each checks the argument count against its maximum first, then
-- the arguments in order, as the original does; the crypto is in sodium.ts.
local js, M = ...

local select = select
local check_count, arg_string, arg_integer, argerror = M.check_count, M.arg_string, M.arg_integer, M.argerror

-- Argument `i` as a string of exactly `size` bytes, else `msg`.
local function key(v, i, n, fname, size, msg)
  local s = arg_string(v, i, n, fname, 1)
  if #s ~= size then argerror(i, fname, msg, 3) end
  return s
end

local sodium = {}

function sodium.bin2hex(...)
  local n = select('#', ...)
  check_count(n, 0, 1)
  return js.bin2hex(arg_string((...), 1, n, 'bin2hex'))
end

function sodium.hex2bin(...)
  local n = select('#', ...)
  check_count(n, 0, 1)
  return js.hex2bin(arg_string((...), 1, n, 'hex2bin'))
end

function sodium.randombytes(...)
  local n = select('#', ...)
  check_count(n, 0, 1)
  local size = arg_integer((...), 1, n, 'randombytes')
  if size < 1 then argerror(1, 'randombytes', 'Size is too small') end
  if size > 1048576 then argerror(1, 'randombytes', 'Size is too large') end
  return js.randombytes(size)
end

function sodium.crypto_box_keypair(...)
  check_count(select('#', ...), 0, 0)
  return js.crypto_box_keypair()
end

function sodium.crypto_box_seal(...)
  local n = select('#', ...)
  check_count(n, 0, 2)
  local m, pk = ...
  m = arg_string(m, 1, n, 'crypto_box_seal')
  pk = key(pk, 2, n, 'crypto_box_seal', 32, 'Malformed public key')
  return js.crypto_box_seal(m, pk)
end

function sodium.crypto_box_seal_open(...)
  local n = select('#', ...)
  check_count(n, 0, 3)
  local c, pk, sk = ...
  c = arg_string(c, 1, n, 'crypto_box_seal_open')
  if #c < 48 then argerror(1, 'crypto_box_seal_open', 'Malformed ciphertext') end
  pk = key(pk, 2, n, 'crypto_box_seal_open', 32, 'Malformed public key')
  sk = key(sk, 3, n, 'crypto_box_seal_open', 32, 'Malformed secret key')
  return js.crypto_box_seal_open(c, pk, sk)
end

function sodium.crypto_scalarmult_base(...)
  local n = select('#', ...)
  check_count(n, 0, 1)
  return js.crypto_scalarmult_base(key((...), 1, n, 'crypto_scalarmult_base', 32, 'Malformed secret key'))
end

function sodium.crypto_sign_keypair(...)
  check_count(select('#', ...), 0, 0)
  return js.crypto_sign_keypair()
end

function sodium.crypto_sign_detached(...)
  local n = select('#', ...)
  check_count(n, 0, 2)
  local m, sk = ...
  m = arg_string(m, 1, n, 'crypto_sign_detached')
  sk = key(sk, 2, n, 'crypto_sign_detached', 64, 'Malformed secret key')
  return js.crypto_sign_detached(m, sk)
end

function sodium.crypto_sign_verify_detached(...)
  local n = select('#', ...)
  check_count(n, 0, 3)
  local sig, m, pk = ...
  sig = arg_string(sig, 1, n, 'crypto_sign_verify_detached')
  m = arg_string(m, 2, n, 'crypto_sign_verify_detached')
  pk = key(pk, 3, n, 'crypto_sign_verify_detached', 32, 'Malformed public key')
  if #sig ~= 64 then return end
  return js.crypto_sign_verify_detached(sig, m, pk)
end

_G.sodium = sodium
