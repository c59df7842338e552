# Sourced by run.sh and test.sh: the environment every SafeServe process on this machine shares.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SAFESERVE_HOME="${SAFESERVE_HOME:-$root/.safeserve}"
export SAFESERVE_REDIS_PORT="${SAFESERVE_REDIS_PORT:-6390}"
export SAFESERVE_REDIS_URL="${SAFESERVE_REDIS_URL:-redis://127.0.0.1:${SAFESERVE_REDIS_PORT}/0}"
# Default models come from inside packages; nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
# Ray puts unix sockets under its temp dir, whose paths must stay short (107 bytes).
ray_tmp="$SAFESERVE_HOME/ray"
[ ${#ray_tmp} -le 48 ] || ray_tmp="/tmp/safeserve-ray-$(echo "$root" | md5sum | cut -c1-8)"
export RAY_TMPDIR="${RAY_TMPDIR:-$ray_tmp}"
# Ray's faster data paths: gRPC between replicas, direct ingress, and HAProxy in front of the ingress replicas
# instead of Serve's Python proxy (see docs/architecture.md). Ray 2.60's HAProxy binds its stats and metrics
# frontends on all interfaces, on fixed ports, with its files under /tmp/haproxy-serve: here it runs through
# scripts/haproxy_loopback.sh (every listener on 127.0.0.1), with files and ports of this instance's own
# (SAFESERVE_HOME), so that two instances can run side by side.
export RAY_SERVE_THROUGHPUT_OPTIMIZED="${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}"
export RAY_SERVE_ENABLE_HA_PROXY="${RAY_SERVE_ENABLE_HA_PROXY:-1}"
export RAY_SERVE_HAPROXY_BINARY_PATH="${RAY_SERVE_HAPROXY_BINARY_PATH:-$root/scripts/haproxy_loopback.sh}"
instance="$(printf %s "$SAFESERVE_HOME" | md5sum | cut -c1-8)"
# HAProxy caps its admin socket's path at 97 bytes and Ray adds a 56-character directory: keep this one short.
export SAFESERVE_HAPROXY_DIR="${SAFESERVE_HAPROXY_DIR:-/tmp/safeserve-hap-$instance}"
export RAY_SERVE_HAPROXY_CONFIG_FILE_LOC="$SAFESERVE_HAPROXY_DIR/haproxy.cfg"
export RAY_SERVE_HAPROXY_SOCKET_PATH="$SAFESERVE_HAPROXY_DIR/admin.sock"
export RAY_SERVE_HAPROXY_SERVER_STATE_BASE="$SAFESERVE_HAPROXY_DIR"
export RAY_SERVE_HAPROXY_SERVER_STATE_FILE="$SAFESERVE_HAPROXY_DIR/server-state"
export RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH="$SAFESERVE_HAPROXY_DIR/metrics.sock"
# This instance's ports: HAProxy's stats and metrics frontends, Serve's fallback proxy (HTTP, gRPC) that HAProxy
# forwards to while no ingress replica is up, and the ranges the ingress replicas take their direct-ingress ports
# from. Ray's are fixed, so two instances on one machine would share them, and one's HAProxy would forward to the
# other's proxy or replicas. Each instance takes a block of 64 in 20000-29983 (above Ray's worker ports, below
# direct ingress's defaults and the kernel's ephemeral range): the block a hash of SAFESERVE_HOME names, or the
# next one whose fixed ports nothing listens on.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if [ -z "${SAFESERVE_PORT_BLOCK:-}" ]; then
  block=$((16#$instance % 156))
  for _ in $(seq 156); do
    base=$((20000 + 64 * block))
    port_in_use $base || port_in_use $((base + 1)) || port_in_use $((base + 2)) || port_in_use $((base + 3)) || break
    block=$(((block + 1) % 156))
  done
  export SAFESERVE_PORT_BLOCK=$block
fi
base=$((20000 + 64 * SAFESERVE_PORT_BLOCK))
export RAY_SERVE_HAPROXY_STATS_PORT=$base RAY_SERVE_HAPROXY_METRICS_PORT=$((base + 1))
export RAY_SERVE_FALLBACK_PROXY_HTTP_PORT=$((base + 2)) RAY_SERVE_FALLBACK_PROXY_GRPC_PORT=$((base + 3))
export RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT=$((base + 4)) RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT=$((base + 33))
export RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT=$((base + 34)) RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT=$((base + 63))
mkdir -p "$SAFESERVE_HOME" "$RAY_TMPDIR"
# Log retention: Serve's JSON logs (one line per request and per incident) rotate at 100 MB, 5 files kept.
export RAY_ROTATION_MAX_BYTES="${RAY_ROTATION_MAX_BYTES:-104857600}" RAY_ROTATION_BACKUP_COUNT="${RAY_ROTATION_BACKUP_COUNT:-5}"
# Throughput-optimised Serve buffers 1000 log records per replica before writing them; a safety gateway's request
# and incident lines must reach the file as they happen (and survive a crash), so flush every record.
export RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE="${RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE:-1}"
