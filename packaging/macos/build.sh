#!/usr/bin/env bash
# Build medview.app and a .dmg on macOS (11+, Apple silicon or Intel: the build machine's):
#
#   bash packaging/macos/build.sh
#
# Needs Python 3.11+ (python.org or Homebrew) and the Xcode command line tools (codesign,
# hdiutil). The app is signed ad hoc, which runs on the machine that built it; to hand it to
# others, sign with a Developer ID and notarize (see packaging/README.md, not done here).
# Output: dist/medview.app and dist/medview-VERSION-macos-ARCH.dmg.
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=${PYTHON:-python3}
VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' medview/__init__.py)
ARCH=$(uname -m)
VENV=build/packaging/venv-macos

# a build environment with only the runtime dependencies, the gui extra and PyInstaller
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q ".[gui]" -r packaging/build-requirements.txt
fi

rm -rf dist/medview dist/medview.app
"$VENV/bin/python" -m PyInstaller --noconfirm --distpath dist --workpath build/packaging/work-macos \
  packaging/medview.spec

# the bundle must pass its own self-test before it is packed
dist/medview.app/Contents/MacOS/medview selftest

codesign --force --deep --sign - dist/medview.app
DMG=dist/medview-$VERSION-macos-$ARCH.dmg
rm -f "$DMG"
hdiutil create -volname "medview $VERSION" -srcfolder dist/medview.app -ov -format UDZO "$DMG"
echo "$DMG"
