-- qrelay example configuration: accepts mail on ./run/qrelay.sock and
-- stores every mail as a file under ./run/mail/.  Started by `npm start`.
--
-- During this load, relative paths resolve against this file's folder; at
-- runtime the working directory is `/`, so absolute paths are computed now.
local here = debug.getinfo(1, 'S').source:match('^@(.*)/[^/]*$') or '.'
local root = here .. '/..'
local spool = root .. '/run/mail'
local save_mail = here .. '/save-mail.sh'

local function handler(m)
  -- refuse mail for a demonstration domain outright
  for _, recipient in ipairs(m.recipients) do
    if recipient:match('@example%.invalid$') then
      return m:reject()
    end
  end

  -- tell the next hop who submitted it
  m:insert_header('X-Qrelay-Sender-Uid', m.uid or 'unknown')

  -- hand the mail to a program, sendmail style: envelope as arguments,
  -- message on stdin; its exit status becomes the QMQP answer
  return m:exec_raw(save_mail, spool, m.sender, unpack(m.recipients))
end

qmqp_listen(root .. '/run/qrelay.sock', handler)

-- SIGHUP (systemctl reload qrelay) calls this
function reload()
  print('reload requested; nothing to do')
end
