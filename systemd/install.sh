#!/usr/bin/env bash
# Installs polod and marcod as systemd services from an installed package (npm install -g).
#
# Usage: sudo systemd/install.sh [--no-start]
#        DESTDIR=/some/root systemd/install.sh    # stage the files under a root, change nothing else
#
# The units run with the built-in defaults: no configuration file is needed. polod reads
# /etc/marcopolo/polo/polo.cfg and marcod /etc/marcopolo/marco/marco.cfg when they exist.
# With DESTDIR set, the files are written under it and nothing else happens (no group, no
# systemctl): a packager's staging step, and what test/integration/install.test.ts checks.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="${DESTDIR:-}"
start=yes
for arg in "$@"; do
  case "$arg" in
    --no-start) start=no ;;
    -h|--help) sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install.sh: unknown argument '$arg' (see --help)" >&2; exit 2 ;;
  esac
done

if [ -z "$root" ]; then
  [ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root (or set DESTDIR to stage the files)" >&2; exit 2; }
  command -v polod >/dev/null && command -v marcod >/dev/null ||
    { echo "install.sh: polod and marcod are not on PATH (sudo npm install -g . first)" >&2; exit 2; }
fi

install -d -m 0755 "$root/etc/marcopolo/polo/services" "$root/etc/marcopolo/marco"
install -d -m 0700 "$root/etc/marcopolo/certs"
install -d -m 0755 "$root/etc/systemd/system" "$root/usr/lib/sysusers.d"
install -m 0644 "$here/polod.service" "$here/marcod.service" "$root/etc/systemd/system/"
install -m 0644 "$here/marcopolo.sysusers.conf" "$root/usr/lib/sysusers.d/marcopolo.conf"

if [ -n "$root" ]; then
  echo "staged under $root: polod.service, marcod.service, /etc/marcopolo, sysusers.d/marcopolo.conf"
  exit 0
fi

getent group marcopolo >/dev/null || groupadd --system marcopolo
systemctl daemon-reload
if [ "$start" = yes ]; then
  systemctl enable --now marcod.service polod.service
fi
echo "installed: polod.service and marcod.service (group marcopolo may publish root services)"
