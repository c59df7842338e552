#!/usr/bin/env bash
# Installs the Debian packages SafeServe needs when they are missing: redis-server; with --test also chromium,
# which the console's browser test drives headless through Playwright (no browser download at run time), and
# prometheus (promtool checks the alert rules; the monitoring test runs a Prometheus); with --monitoring only
# prometheus, for `make monitor`; with --bench also hey, the HTTP load generator of `make bench-gateway`.
set -euo pipefail
missing=()
if [ "${1:-}" = "--monitoring" ]; then
  command -v promtool >/dev/null || missing+=(prometheus)
else
  command -v redis-server >/dev/null || missing+=(redis-server)
fi
if [ "${1:-}" = "--bench" ]; then
  command -v hey >/dev/null || missing+=(hey)
fi
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null || missing+=(chromium)
  command -v promtool >/dev/null || missing+=(prometheus)
  # docker-compose (v1): tests/k8s validates docker/docker-compose.yml with `docker-compose config`.
  command -v docker-compose >/dev/null || missing+=(docker-compose)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
running_before=" $(pgrep -x prometheus | tr '\n' ' ' || true) "
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package may start a system-wide instance on 6379; SafeServe runs its own on loopback.
# Likewise prometheus: its package enables a system service on :9090 where an init system runs. `make monitor`
# and the tests run their own, so stop and disable that one, and end any prometheus the install started.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    $sudo systemctl disable --now prometheus >/dev/null 2>&1 || true
  elif [ -x /etc/init.d/prometheus ]; then
    $sudo /etc/init.d/prometheus stop >/dev/null 2>&1 || true
  fi
  for pid in $(pgrep -x prometheus || true); do
    [[ "$running_before" == *" $pid "* ]] || $sudo kill "$pid" 2>/dev/null || true
  done
fi
