#!/usr/bin/env bash
# Regenerates the committed pydensecrf parity fixtures (make_fixtures.py says what is stored).
# Usage, from the workspace root: bash inference/tests/data/crf/make_fixtures.sh
# BENCH_VENV picks the venv (default .deps/bench-venv, made by bench/reference/setup.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../../.." && pwd)"
venv="${BENCH_VENV:-$root/.deps/bench-venv}"
bash "$root/bench/reference/setup.sh" bench "$venv"
"$venv/bin/python" "$root/inference/tests/data/crf/make_fixtures.py"
