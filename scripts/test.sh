#!/usr/bin/env bash
# Install what the tests need (Debian packages, the Python test extras), then run the whole
# suite: lint, layering contracts, the headless tests in an environment without Qt, and the
# GUI tests (pytest-qt offscreen, one screenshot under Xvfb) in the full environment.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
.venv/bin/ruff check medview tests benchmarks packaging
.venv/bin/lint-imports
.venv-headless/bin/python -m pytest -q --ignore=tests/gui "$@"
.venv/bin/python -m pytest -q tests/gui "$@"
