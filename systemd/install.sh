#!/usr/bin/env bash
# Installs polod and marcod as systemd services from an installed package (npm install -g).
# Usage: sudo systemd/install.sh [--no-start]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 2; }
command -v polod >/dev/null || { echo "install.sh: polod is not on PATH (npm install -g first)" >&2; exit 2; }

getent group marcopolo >/dev/null || groupadd --system marcopolo
install -d -m 0755 /etc/marcopolo/polo/services /etc/marcopolo/marco
install -d -m 0700 /etc/marcopolo/certs
install -m 0644 "$here/polod.service" "$here/marcod.service" /etc/systemd/system/
install -D -m 0644 "$here/marcopolo.sysusers.conf" /usr/lib/sysusers.d/marcopolo.conf
systemctl daemon-reload
if [ "${1:-}" != "--no-start" ]; then
  systemctl enable --now marcod.service polod.service
fi
echo "installed: polod.service and marcod.service (group marcopolo may publish root services)"
