#!/usr/bin/env bash
# System packages the namespace LAN tests need: iproute2 (ip netns, veth, bridge), the
# user-management tools (useradd/groupadd) for the local-API tests, setpriv (util-linux) to run a
# test program as one of those users, systemd-analyze for the units, nft for marco doctor,
# promtool for the metrics, python3 for a raw-socket test, chromium for the dashboard, etcd for
# the grid registry and openssl for its TLS test.
# Installs only what is missing.
set -euo pipefail
need=()
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v useradd >/dev/null 2>&1 || need+=(passwd)
command -v getent >/dev/null 2>&1 || need+=(libc-bin)
# setpriv runs test clients as the test users (trust tests).
command -v setpriv >/dev/null 2>&1 || need+=(util-linux)
# systemd-analyze verify checks the shipped units (test/integration/install.test.ts).
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
# nft sets up the firewall rule marco doctor must find (test/integration/doctor.test.ts).
command -v nft >/dev/null 2>&1 || need+=(nftables)
# Debian's Chromium, driven by playwright-core, for the dashboard's browser test
# (test/integration/dashboard.test.ts); playwright's own browser downloads are never used.
# Installed with its recommends (fonts among them), as on the machines where it was seen to work.
browser=()
command -v chromium >/dev/null 2>&1 || browser=(chromium)
# promtool (Debian's prometheus package) validates the daemons' metrics (test/integration/metrics.test.ts);
# its recommends (node-exporter and the like) are not needed, hence a separate install below.
promtool=()
command -v promtool >/dev/null 2>&1 || promtool=(prometheus)
# python3 forges a datagram from source port 0 (a raw socket) in test/integration/lan-abuse-users.test.ts.
command -v python3 >/dev/null 2>&1 || need+=(python3-minimal)
# openssl makes the private CA and certificates of the registry's TLS test (test/helpers/test-pki.ts).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# Debian's etcd-server (etcd 3.4 on bookworm): the three-member cluster of the grid registry tests
# (test/integration/registry-etcd.test.ts) and benchmarks (bench/registry.ts); no recommends needed.
etcd=()
command -v etcd >/dev/null 2>&1 || etcd=(etcd-server)
if [ $((${#need[@]} + ${#promtool[@]} + ${#browser[@]} + ${#etcd[@]})) -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "install-test-deps: missing ${need[*]} ${promtool[*]} ${browser[*]} ${etcd[*]}; run as root or install them" >&2
    exit 0
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#need[@]} -gt 0 ]; then apt-get install -y -qq "${need[@]}"; fi
  if [ ${#promtool[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${promtool[@]}"; fi
  if [ ${#browser[@]} -gt 0 ]; then apt-get install -y -qq "${browser[@]}"; fi
  # The package enables an etcd service for the host; the tests run their own members in
  # namespaces, so that service is stopped where systemd runs (harmless where it does not).
  if [ ${#etcd[@]} -gt 0 ]; then
    apt-get install -y -qq --no-install-recommends "${etcd[@]}"
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then systemctl disable --now etcd >/dev/null 2>&1 || true; fi
  fi
fi
