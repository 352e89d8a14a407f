// DEBIAN/postinst, prerm and postrm, written as debhelper's
// dh_installsysusers and dh_installsystemd would write them:
// - configure: create the system user (systemd-sysusers), enable the
//   socket units (deb-systemd-helper) and start them on a fresh install; on
//   an upgrade, restart the service if it runs (the socket stays open, so no
//   client is refused meanwhile); the service itself is socket-activated
//   and never enabled;
// - remove: stop socket and service; purge: forget the enablement.

/**
 * @param {{ sysusers: string[], sockets: string[], services: string[] }} units
 * @returns {{ postinst: string, prerm: string, postrm: string }}
 */
export function maintainerScripts({ sysusers, sockets, services }) {
  const quoted = (list) => list.map((u) => `'${u}'`).join(' ');
  const all = quoted([...sockets, ...services]);
  const postinst = `#!/bin/sh
set -e

if [ "$1" = "configure" ] || [ "$1" = "abort-upgrade" ] || [ "$1" = "abort-deconfigure" ] || [ "$1" = "abort-remove" ]; then
${sysusers.map((file) => `\tsystemd-sysusers \${DPKG_ROOT:+--root="$DPKG_ROOT"} ${file}`).join('\n')}
${sockets
  .map(
    (unit) => `\t# only removes a mask created by deb-systemd-helper at removal
\tdeb-systemd-helper unmask '${unit}' >/dev/null || true
\t# was-enabled is true on a fresh install: enable; otherwise keep the admin's choice
\tif deb-systemd-helper --quiet was-enabled '${unit}'; then
\t\tdeb-systemd-helper enable '${unit}' >/dev/null || true
\telse
\t\tdeb-systemd-helper update-state '${unit}' >/dev/null || true
\tfi`,
  )
  .join('\n')}
\tif [ -z "\${DPKG_ROOT:-}" ] && [ -d /run/systemd/system ]; then
\t\tsystemctl --system daemon-reload >/dev/null || true
\t\tif [ -n "$2" ]; then
\t\t\tdeb-systemd-invoke try-restart ${quoted(services)} >/dev/null || true
\t\telse
\t\t\tdeb-systemd-invoke start ${quoted(sockets)} >/dev/null || true
\t\tfi
\tfi
fi

exit 0
`;
  const prerm = `#!/bin/sh
set -e

if [ -z "\${DPKG_ROOT:-}" ] && [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
\tdeb-systemd-invoke stop ${all} >/dev/null || true
fi

exit 0
`;
  const postrm = `#!/bin/sh
set -e

if [ "$1" = "remove" ] && [ -d /run/systemd/system ]; then
\tsystemctl --system daemon-reload >/dev/null || true
fi

if command -v deb-systemd-helper >/dev/null; then
\tif [ "$1" = "remove" ]; then
\t\tdeb-systemd-helper mask ${quoted(sockets)} >/dev/null || true
\tfi
\tif [ "$1" = "purge" ]; then
\t\tdeb-systemd-helper purge ${quoted(sockets)} >/dev/null || true
\t\tdeb-systemd-helper unmask ${quoted(sockets)} >/dev/null || true
\tfi
fi

exit 0
`;
  return { postinst, prerm, postrm };
}
