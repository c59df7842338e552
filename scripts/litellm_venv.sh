#!/usr/bin/env bash
# The LiteLLM proxy that tests/e2e/test_litellm.py puts in front of SafeServe's guardrail route, in a venv of its
# own: litellm[proxy] pins openai, pydantic, fastapi and others to versions that differ from ours, so it cannot
# share .venv. The version is the one the Generic Guardrail API contract was checked against (docs/litellm.md).
# Idempotent: a venv that already holds this version is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
LITELLM_VERSION="${LITELLM_VERSION:-1.108.7}"
venv="${SAFESERVE_LITELLM_VENV:-.safeserve/litellm-venv}"
stamp="$venv/.litellm-$LITELLM_VERSION"
[ -f "$stamp" ] && [ -x "$venv/bin/litellm" ] && exit 0
echo "installing litellm[proxy]==$LITELLM_VERSION into $venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "litellm[proxy]==$LITELLM_VERSION"
touch "$stamp"
