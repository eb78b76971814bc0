#!/usr/bin/env bash
# The paper preset's GPU recipe on one GPU (under 8 minutes): see benchmarks/gpu_recipe.py.
# `bash benchmarks/gpu.sh --smoke` runs tiny sizes on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
exec timeout 480 "$PY" benchmarks/gpu_recipe.py "$@"
