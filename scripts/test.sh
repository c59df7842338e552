#!/usr/bin/env bash
# `make test`: the whole suite. Tests start their own redis-server and Ray instance on free loopback ports.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/env.sh
exec .venv/bin/python -m pytest "$@"
