-- qrelay configuration showing the extra Lua libraries (json, sodium, jwt,
-- control_client, socket).  Every mail
--
--   * gets an `X-Relay-Token` header: a JWT signed with our Ed25519 key,
--     which the downstream service verifies instead of trusting the sender;
--   * leaves an audit record: JSON, sealed with the auditors' public key
--     (only they can read it), written to a datagram log socket;
--   * from a blocked domain is rejected, and beng-proxy is told to reset the
--     sending account's rate limiter so it cannot keep trying at full speed.
--
-- Paths and keys come from the environment (the defaults suit a typical
-- installation):
--
--   QRELAY_SOCKET        where qrelay listens (QMQP)
--   QRELAY_DOWNSTREAM    where accepted mail goes (QMQP)
--   QRELAY_AUDIT_LOG     datagram socket of the audit log collector
--   QRELAY_BENG_CONTROL  beng-proxy's control socket (host[:port], /path or @name)
--   QRELAY_SETTINGS      JSON: {"blocked_domains": [...], "token_lifetime": seconds}
--   QRELAY_JWT_KEY       hex of the 64-byte Ed25519 secret key (sodium.crypto_sign_keypair)
--   QRELAY_AUDIT_KEY     hex of the auditors' 32-byte X25519 public key

local getenv = os.getenv

local settings = assert(json.parse(getenv('QRELAY_SETTINGS') or '{"blocked_domains": ["spam.example"], "token_lifetime": 300}'))

local function hex_key(name, size)
  local text = getenv(name)
  if text == nil then return nil end
  local key = sodium.hex2bin(text)
  assert(key and #key == size, name .. ' must be ' .. size .. ' bytes in hex')
  return key
end

-- Without configured keys: throw-away keys, so that the configuration still
-- loads (tokens and audit records are then useless to anyone else).
local jwt_key = hex_key('QRELAY_JWT_KEY', 64) or select(2, sodium.crypto_sign_keypair())
local audit_key = hex_key('QRELAY_AUDIT_KEY', 32) or sodium.crypto_box_keypair()

-- Sockets are made once at startup and reused by every handler run.
local audit_log = assert(socket:connect(getenv('QRELAY_AUDIT_LOG') or '@qrelay-audit', { type = 'dgram' }))
local beng = assert(control_client:new(getenv('QRELAY_BENG_CONTROL') or '/run/cm4all/beng-proxy/control'))

local blocked = {}
for _, domain in ipairs(settings.blocked_domains or {}) do blocked[domain:lower()] = true end

local function audit(record)
  local sealed = sodium.crypto_box_seal(json.dump(record), audit_key)
  -- a lost audit record must not hold up the mail
  local ok, err = audit_log:send(sodium.bin2hex(sealed))
  if not ok then io.stderr:write('audit log: ', err, '\n') end
end

audit({ event = 'startup', time = os.time(), blocked = settings.blocked_domains })

local downstream = getenv('QRELAY_DOWNSTREAM') or '/run/cm4all/qrelay/downstream.sock'

qmqp_listen(getenv('QRELAY_SOCKET') or '/run/cm4all/qrelay/qrelay.sock', function(mail)
  local domain = (mail.sender:match('@([^@]+)$') or ''):lower()
  local now = os.time()
  audit({ sender = mail.sender, recipients = mail.recipients, uid = mail.uid, time = now })

  if blocked[domain] then
    -- one datagram, one packet; beng-proxy looks the account up itself
    beng:send(beng:build():reset_limiter(mail.sender))
    return mail:reject()
  end

  local token = jwt.sign(jwt_key, { kid = 'qrelay' }, {
    sub = mail.sender,
    rcpt = #mail.recipients,
    iat = now,
    exp = now + (settings.token_lifetime or 300),
  })
  mail:insert_header('X-Relay-Token', token)
  return mail:connect(downstream)
end)
