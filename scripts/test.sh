#!/usr/bin/env bash
# Install what the tests need (Debian packages, the Python test extras), then run the whole
# suite: lint, layering contracts, the headless tests in an environment without Qt, and the
# GUI tests (pytest-qt offscreen, one screenshot under Xvfb) in the full environment and again
# with the lowest GUI libraries allowed, then the packaged application end to end.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
.venv/bin/ruff check medview tests benchmarks packaging scripts phantoms
.venv/bin/lint-imports
.venv-headless/bin/python -m pytest -q --ignore=tests/gui --ignore=tests/e2e/test_package.py "$@"
.venv/bin/python -m pytest -q tests/gui "$@"
# again with the lowest PySide6, pyqtgraph and psygnal that pyproject.toml allows: a range CI
# does not test is not a range we offer
.venv-guimin/bin/python -c "import PySide6, pyqtgraph, psygnal; print('GUI tests with the \
lowest versions allowed: PySide6', PySide6.__version__, 'pyqtgraph', pyqtgraph.__version__, \
'psygnal', psygnal.__version__)"
.venv-guimin/bin/python -m pytest -q tests/gui "$@"
# last, the installer: packaging/build.sh builds the bundle, .deb and tarball (about 4-5
# minutes from a fresh clone, nothing when unchanged), then the installed app is checked
.venv/bin/python -m pytest -q tests/e2e/test_package.py "$@"
