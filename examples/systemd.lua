-- Configuration for running under systemd with qrelay.socket: serve the
-- socket systemd passes, relay to the local QMQP server.
local downstream = qmqp_resolve('127.0.0.1:628')

qmqp_listen(systemd, function(m)
  return m:connect(downstream)
end)
