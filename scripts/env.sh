# Sourced by run.sh and test.sh: the environment every SafeServe process on this machine shares.
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export SAFESERVE_HOME="${SAFESERVE_HOME:-$root/.safeserve}"
export SAFESERVE_REDIS_PORT="${SAFESERVE_REDIS_PORT:-6390}"
export SAFESERVE_REDIS_URL="${SAFESERVE_REDIS_URL:-redis://127.0.0.1:${SAFESERVE_REDIS_PORT}/0}"
# Default models come from inside packages; nothing is fetched from a model hub at run time.
export HF_HUB_OFFLINE="${HF_HUB_OFFLINE:-1}" TRANSFORMERS_OFFLINE="${TRANSFORMERS_OFFLINE:-1}"
export RAY_USAGE_STATS_ENABLED=0 RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
# Ray's faster data paths (gRPC between replicas, direct ingress); see docs/architecture.md.
export RAY_SERVE_THROUGHPUT_OPTIMIZED="${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}"
# Ray puts unix sockets under its temp dir, whose paths must stay short (107 bytes).
ray_tmp="$SAFESERVE_HOME/ray"
[ ${#ray_tmp} -le 48 ] || ray_tmp="/tmp/safeserve-ray-$(echo "$root" | md5sum | cut -c1-8)"
export RAY_TMPDIR="${RAY_TMPDIR:-$ray_tmp}"
mkdir -p "$SAFESERVE_HOME" "$RAY_TMPDIR"
