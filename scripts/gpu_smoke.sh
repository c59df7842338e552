#!/usr/bin/env bash
# GPU smoke check of the Generator's backend vllm: NOT YET RUN ON A GPU (docs/generation.md).
#
# On a machine with an NVIDIA GPU and this project installed (`make install models`): installs the pinned vLLM
# (pyproject's `vllm` extra) with a CUDA torch, serves configs/production.yaml's graph (the LLMServer on the
# model at MODEL_PATH, default the built SmolLM2-135M-Instruct) on 127.0.0.1:$SAFESERVE_HTTP_PORT, then
# bench/gpu_smoke.py sends a chat, a stream, a blocked prompt and an unsafe answer and prints time to first
# token, tokens/s and the guard's overhead. Exits non-zero when a check fails. Stops what it started.
#
#   scripts/gpu_smoke.sh [MODEL_PATH]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
source scripts/redis.sh

model_path="$(realpath "${1:-$SAFESERVE_HOME/models/smollm2/hf}")"
port="${SAFESERVE_HTTP_PORT:-8000}"
[ -f "$model_path/config.json" ] || { echo "no model at $model_path (make models, or pass a directory)" >&2; exit 2; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || { echo "no NVIDIA GPU here" >&2; exit 2; }

# vLLM wants a CUDA torch; the CPU set-up installs torch's CPU wheel, so take the same version from PyPI.
vllm_pin="$(.venv/bin/python -c 'import tomllib; print(tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["vllm"][0])')"
torch_pin="$(.venv/bin/python -c 'import tomllib; print(next(d for d in tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"] if d.startswith("torch==")))')"
if .venv/bin/python -c 'import torch, sys; sys.exit(0 if torch.version.cuda else 1)'; then
  .venv/bin/pip install "$vllm_pin" "$torch_pin"
else
  .venv/bin/pip install --force-reinstall --index-url https://pypi.org/simple "$vllm_pin" "$torch_pin"
fi
.venv/bin/python -c 'import vllm, torch; print("vllm", vllm.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())'

# configs/production.yaml on one machine: loopback, the model at MODEL_PATH, one replica of each deployment.
config="$SAFESERVE_HOME/gpu-smoke.yaml"
.venv/bin/python - "$model_path" "$port" "$config" <<'PY'
import sys

import yaml

model_path, port, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
config = yaml.safe_load(open("configs/production.yaml"))
config["http_options"].update(host="127.0.0.1", port=port)
config["proxy_location"] = "HeadOnly"
app = config["applications"][0]
app["args"]["llm"]["model_loading_config"]["model_source"] = model_path
app["args"]["llm"]["deployment_config"]["autoscaling_config"].update(min_replicas=1, max_replicas=1)
for deployment in app["deployments"]:
    deployment.pop("autoscaling_config", None)
    deployment["num_replicas"] = 1
yaml.safe_dump(config, open(out, "w"), sort_keys=False)
PY
.venv/bin/safeserve config check "$config"

export SAFESERVE_ADMIN_KEY="${SAFESERVE_ADMIN_KEY:-ss-admin-$(.venv/bin/python -c 'import secrets; print(secrets.token_urlsafe(32))')}"
serve_pid=""
cleanup() {
  if [ -n "$serve_pid" ]; then
    kill -INT "$serve_pid" 2>/dev/null || true
    for _ in $(seq 90); do kill -0 "$serve_pid" 2>/dev/null || break; sleep 0.5; done
    kill -TERM "$serve_pid" 2>/dev/null || true
  fi
  stop_redis
}
trap cleanup EXIT
start_redis
.venv/bin/python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])' \
  .venv/bin/serve run "$config" > "$SAFESERVE_HOME/gpu-smoke-serve.log" 2>&1 &
serve_pid=$!
echo "starting the production graph (log: $SAFESERVE_HOME/gpu-smoke-serve.log)..."
for _ in $(seq 600); do
  curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  kill -0 "$serve_pid" 2>/dev/null || { tail -50 "$SAFESERVE_HOME/gpu-smoke-serve.log" >&2; exit 1; }
  sleep 1
done
curl -fs "http://127.0.0.1:$port/readyz" >/dev/null || { echo "not ready after 10 minutes" >&2; exit 1; }

key="$(curl -fs -X POST "http://127.0.0.1:$port/admin/keys" -H "authorization: Bearer $SAFESERVE_ADMIN_KEY" \
  -H 'content-type: application/json' -d '{"user_id": "gpu-smoke", "tier": "standard", "reason": "GPU smoke"}' \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["key"])')"
.venv/bin/python -m bench.gpu_smoke --url "http://127.0.0.1:$port" --key "$key"
