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
# Ray's faster data paths: gRPC between replicas and direct ingress (see docs/architecture.md). HAProxy stays
# off here: Ray 2.60's HAProxy binds its stats (8404) and metrics (9101) ports on all interfaces, on fixed
# ports that collide between two instances on one machine, and it outlives `ray stop`. Production turns it on.
export RAY_SERVE_THROUGHPUT_OPTIMIZED="${RAY_SERVE_THROUGHPUT_OPTIMIZED:-1}"
export RAY_SERVE_ENABLE_HA_PROXY="${RAY_SERVE_ENABLE_HA_PROXY:-0}"
mkdir -p "$SAFESERVE_HOME" "$RAY_TMPDIR"
# Log retention: Serve's JSON logs (one line per request and per incident) rotate at 100 MB, 5 files kept.
export RAY_ROTATION_MAX_BYTES="${RAY_ROTATION_MAX_BYTES:-104857600}" RAY_ROTATION_BACKUP_COUNT="${RAY_ROTATION_BACKUP_COUNT:-5}"
# Throughput-optimised Serve buffers 1000 log records per replica before writing them; a safety gateway's request
# and incident lines must reach the file as they happen (and survive a crash), so flush every record.
export RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE="${RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE:-1}"
