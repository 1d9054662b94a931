#!/usr/bin/env bash
# Installs VoiceFlow with its dev extras into .venv and runs the whole suite (lint, layering, types, tests).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e ".[dev]"
.venv/bin/ruff check .
.venv/bin/lint-imports
.venv/bin/mypy voiceflow voiceflow_cli voiceflow_edge inference_pod pipelines voiceflow_workflows control_api operator/voiceflow_operator benchmarks scripts
.venv/bin/python -m pytest --cov --cov-report=term --cov-report=xml "$@"
