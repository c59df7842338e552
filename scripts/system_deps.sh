#!/usr/bin/env bash
# Installs the Debian packages SafeServe needs when they are missing: redis-server; with --test also chromium,
# which the console's browser test drives headless through Playwright (no browser download at run time).
set -euo pipefail
missing=()
command -v redis-server >/dev/null || missing+=(redis-server)
if [ "${1:-}" = "--test" ]; then
  command -v chromium >/dev/null || missing+=(chromium)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing Debian packages: ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The Debian package may start a system-wide instance on 6379; SafeServe runs its own on loopback.
