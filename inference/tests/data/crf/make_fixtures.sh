#!/usr/bin/env bash
# Regenerates the committed pydensecrf parity fixtures (see make_fixtures.py for what is stored).
# Usage, from the workspace root:  bash inference/tests/data/crf/make_fixtures.sh
set -euo pipefail
venv="${BENCH_VENV:-.deps/bench-venv}"
bash "${BENCH_DIR:-/work/shared/bench}/setup.sh" "$venv"
"$venv/bin/python" "$(dirname "$0")/make_fixtures.py" "${1:-/tmp/crf_fixtures}"
