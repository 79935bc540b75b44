#!/usr/bin/env bash
# System packages the namespace LAN tests need: iproute2 (ip netns, veth, bridge) and the
# user-management tools (useradd/groupadd) for the local-API tests, setpriv (util-linux) to run
# a test program as one of those users. Installs only what is missing.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
command -v getent >/dev/null 2>&1 || need+=(libc-bin)
# setpriv runs test clients as the test users (trust tests).
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# python3 forges a datagram from source port 0 (a raw socket) in test/integration/lan-abuse-users.test.ts.
command -v python3 >/dev/null 2>&1 || need+=(python3-minimal)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]}; run as root or install them" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}"
fi
