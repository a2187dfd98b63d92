#!/usr/bin/env bash
# Install what the tests need (Debian packages and the Python test extra), then run the
# whole suite: lint, layering contracts, tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
.venv/bin/ruff check medview tests benchmarks
.venv/bin/lint-imports
.venv/bin/python -m pytest -q "$@"
