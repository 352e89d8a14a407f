#!/bin/sh
# Stores one mail for the example config: save-mail.sh SPOOL SENDER RCPT...
# Runs with an empty environment (qrelay passes none), so paths are absolute.
set -eu
spool=$1
sender=$2
shift 2
umask 022
/bin/mkdir -p "$spool"
file="$spool/$(/bin/date +%Y%m%dT%H%M%S)-$$.eml"
{
  printf 'X-Envelope-From: <%s>\n' "$sender"
  for rcpt in "$@"; do printf 'X-Envelope-To: <%s>\n' "$rcpt"; done
  /bin/cat
} > "$file.tmp"
/bin/mv "$file.tmp" "$file"
printf 'queued as %s\n' "${file##*/}"
