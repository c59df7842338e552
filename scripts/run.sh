#!/usr/bin/env bash
# `make run`: Redis + the SafeServe app in the foreground. Ctrl-C or SIGTERM stops everything it started.
# Overrides (environment): SAFESERVE_HTTP_PORT (8000), SAFESERVE_REDIS_PORT (6390), SAFESERVE_HOME, RAY_TMPDIR
# (scripts/env.sh), and the Generator's SAFESERVE_GENERATOR_BACKEND, SAFESERVE_UPSTREAM_URL, SAFESERVE_UPSTREAM_MODEL.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/redis.sh

key_file="$SAFESERVE_HOME/admin_key"
if [ -z "${SAFESERVE_ADMIN_KEY:-}" ]; then
  if [ ! -s "$key_file" ]; then
    (umask 077 && .venv/bin/python -c 'import secrets; print("ss-admin-" + secrets.token_urlsafe(32))' > "$key_file")
  fi
  SAFESERVE_ADMIN_KEY="$(cat "$key_file")"
  echo "admin key: read it from $key_file (generated once; set SAFESERVE_ADMIN_KEY to use your own)"
fi
export SAFESERVE_ADMIN_KEY

serve_pid=""
shutdown() {
  trap - INT TERM
  echo "stopping SafeServe..."
  if [ -n "$serve_pid" ]; then
    # SIGINT is `serve run`'s graceful path (it shuts Serve and Ray down; with direct ingress Serve waits
    # about 30 s for the ingress to drain); SIGTERM only if that hangs.
    kill -INT "$serve_pid" 2>/dev/null || true
    for _ in $(seq 90); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.5; done
    kill -TERM "$serve_pid" 2>/dev/null || true
    wait "$serve_pid" 2>/dev/null || true
  fi
  stop_haproxy
  stop_redis
  exit 0
}
# Ray's HAProxy can outlive Ray (a killed `serve run`); only this instance's, found by its directory.
stop_haproxy() { pkill -f -- "$SAFESERVE_HAPROXY_DIR/" 2>/dev/null || true; }
trap shutdown INT TERM

# `serve run` takes the HTTP port from the config file: with SAFESERVE_HTTP_PORT set, it serves a copy of
# configs/local.yaml with that port (still on 127.0.0.1).
config=configs/local.yaml
if [ -n "${SAFESERVE_HTTP_PORT:-}" ]; then
  config="$SAFESERVE_HOME/serve-config.yaml"
  .venv/bin/python -c 'import sys, yaml; c = yaml.safe_load(open(sys.argv[1])); c["http_options"]["port"] = int(sys.argv[2]); yaml.safe_dump(c, open(sys.argv[3], "w"), sort_keys=False)' \
    configs/local.yaml "$SAFESERVE_HTTP_PORT" "$config"
fi

stop_haproxy
start_redis
if [ "${SAFESERVE_GENERATOR_BACKEND:-}" = "openai_upstream" ]; then
  echo "guarding the upstream model server ${SAFESERVE_UPSTREAM_URL:-?} (model ${SAFESERVE_UPSTREAM_MODEL:-?})"
fi
echo "starting SafeServe on http://127.0.0.1:${SAFESERVE_HTTP_PORT:-8000} (first start loads the models: about a minute)"
# A background job of a script starts with SIGINT ignored; restore it so `serve run` can shut down on it.
.venv/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  .venv/bin/serve run "$config" &
serve_pid=$!
wait "$serve_pid" || true
serve_pid=""
stop_haproxy
stop_redis
