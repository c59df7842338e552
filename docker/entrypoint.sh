#!/usr/bin/env bash
# The image's entrypoint (docker/Dockerfile runs it under tini as `safeserve-container`).
#   safeserve-container CONFIG.yaml   start a Ray head node in this container and `serve run` CONFIG on it
#   safeserve-container CMD [ARGS]    run CMD as given: `safeserve config check ...`, `ray status`, `bash`
# KubeRay does not use it: the operator starts its own `ray start` in the image (k8s/).
set -euo pipefail

if [ $# -ne 1 ] || [[ "$1" != *.yaml && "$1" != *.yml ]]; then
  exec "$@"
fi

config="$1"
if [ ! -f "$config" ]; then
  echo "safeserve-container: no config file '$config' (the image has configs/production.yaml, configs/local.yaml)" >&2
  exit 2
fi
# Fail in seconds, naming the bad field, rather than after Ray has started.
safeserve config check "$config"

# Serve binds http_options.host inside the container's own network namespace; which host address reaches it is
# decided outside, by `docker run -p 127.0.0.1:8000:8000` or compose's `ports:`. A config bound to loopback
# (configs/local.yaml) would be unreachable through those, so the copy served here binds all of the
# container's interfaces; everything else in it is the config as written.
served="$(mktemp -d)/serve-config.yaml"
python - "$config" "$served" <<'PY'
import sys

import yaml

source, target = sys.argv[1:]
with open(source) as handle:
    config = yaml.safe_load(handle)
config.setdefault("http_options", {})["host"] = "0.0.0.0"
with open(target, "w") as handle:
    yaml.safe_dump(config, handle, sort_keys=False)
PY

# A head node with fixed ports: GCS 6379, dashboard 8265 (on the container's interfaces, so that a published
# 127.0.0.1:8265 reaches it), Prometheus metrics 8080 (docker/prometheus.yml scrapes ray-head:8080).
# SAFESERVE_RAY_START_ARGS adds options, e.g. "--num-cpus=8 --num-gpus=1".
# shellcheck disable=SC2086
ray start --head --port=6379 --dashboard-host=0.0.0.0 --dashboard-port=8265 --metrics-export-port=8080 \
  --disable-usage-stats ${SAFESERVE_RAY_START_ARGS:-}

echo "safeserve-container: serving $config (its http_options.port; bound to the container's interfaces)"
# `serve run` stays in the foreground; SIGINT (the image's STOPSIGNAL, passed on by tini) shuts Serve down
# gracefully, after which the container exits with Ray.
exec serve run --address auto "$served"
