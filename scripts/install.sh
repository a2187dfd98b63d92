#!/usr/bin/env bash
# Install medview on Debian/Ubuntu. Idempotent: run it again any time.
#   bash scripts/install.sh             the application (GUI + command line) in ./.venv
#   bash scripts/install.sh --test      plus everything the test suite needs, in ./.venv, and a
#                                       second environment ./.venv-headless without Qt, where the
#                                       headless tests run (proof that only medview.gui needs Qt),
#                                       and a third, ./.venv-guimin, with the lowest PySide6,
#                                       pyqtgraph and psygnal that pyproject.toml allows (the
#                                       GUI tests run in .venv and in .venv-guimin: both ends
#                                       of the range)
set -euo pipefail
cd "$(dirname "$0")/.."
want_test=0
[ "${1:-}" = "--test" ] && want_test=1

# Debian packages: Qt's xcb platform needs these at run time; the tests also use Xvfb for a
# screenshot and dicom3tools (dciodvfy) / dcmtk to validate and exchange what we write, and a
# real PACS (orthanc, orthanc-dicomweb: the PACS tests start their own, no service);
# the installer test builds with PyInstaller (objdump: binutils), packs with pigz and
# validates desktop entries (desktop-file-utils). medview share --mask-burned-in reads text in
# pixels with tesseract (tesseract-ocr, English: tesseract-ocr-eng).
apt_pkgs=(python3-venv tesseract-ocr tesseract-ocr-eng libgl1 libegl1 libfontconfig1 libglib2.0-0 libxkbcommon0
  libxkbcommon-x11-0 libx11-xcb1 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1
  libxcb-randr0 libxcb-render-util0 libxcb-shape0 libxcb-shm0 libxcb-sync1 libxcb-util1
  libxcb-xfixes0 libxcb-xkb1 libdbus-1-3)
if [ "$want_test" = 1 ]; then
  apt_pkgs+=(xvfb xauth dicom3tools dcmtk orthanc orthanc-dicomweb desktop-file-utils pigz binutils)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

PY=${PYTHON:-python3}
make_venv() {  # make_venv DIR EXTRAS [REQUIREMENT...]
  [ -x "$1/bin/python" ] || "$PY" -m venv "$1"
  "$1/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$1/bin/python" -m pip install -q -e ".[$2]" "${@:3}"
}
if [ "$want_test" = 1 ]; then
  make_venv .venv gui,guitest,test,server
  make_venv .venv-headless test,server
  # the lower bounds of the gui extra and of the GUI's own runtime libraries (psygnal: the
  # viewer's evented models) as exact pins ("pkg>=1.2,<2" -> "pkg==1.2"), read from
  # pyproject.toml so that the range offered and the range tested cannot drift apart
  mapfile -t lowest < <(.venv/bin/python -c '
import re, tomllib
with open("pyproject.toml", "rb") as f:
    project = tomllib.load(f)["project"]
lowest_tested = ("psygnal",)
reqs = project["optional-dependencies"]["gui"] + [
    r for r in project["dependencies"] if re.match(r"[A-Za-z0-9_.-]+", r)[0] in lowest_tested]
for req in reqs:
    print(re.sub(r">=\s*([^,;\s]+).*", r"==\1", req))')
  make_venv .venv-guimin gui,guitest,test,server "${lowest[@]}"
  if .venv-headless/bin/python -c "import PySide6" 2>/dev/null; then
    echo "error: .venv-headless must not contain PySide6" >&2
    exit 1
  fi
  # the application layer's tests (tests/app) run there: its models need psygnal
  .venv-headless/bin/python -c "import psygnal" || {
    echo "error: .venv-headless lacks psygnal (a dependency of medview)" >&2; exit 1; }
else
  make_venv .venv gui
fi
echo "medview installed in $(pwd)/.venv (run .venv/bin/medview)"
