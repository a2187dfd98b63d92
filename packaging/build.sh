#!/usr/bin/env bash
# Build medview's Linux packages with one command, from the repository root or anywhere:
#
#   bash packaging/build.sh [--force]
#
# 1. a build environment build/packaging/venv with only the runtime dependencies, the gui
#    extra and PyInstaller (made again when pyproject.toml changes);
# 2. the PyInstaller one-folder bundle build/packaging/bundle/medview (packaging/medview.spec);
# 3. dist/medview_VERSION_ARCH.deb (bundle under /opt/medview, /usr/bin/medview, desktop entry,
#    icon, DICOM MIME association) and dist/medview-VERSION-linux-ARCH.tar.gz (the bundle).
#
# Nothing is rebuilt when the sources, resources, packaging recipes and pyproject.toml are
# unchanged since the last build (dist/.build-stamp); --force rebuilds. Timings and sizes go to
# dist/build-figures.json. Needs python3 (3.11+) with venv, dpkg-deb and the package registry.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
BUILD=$REPO/build/packaging
DIST=$REPO/dist
PY=${PYTHON:-python3}
force=0
[ "${1:-}" = "--force" ] && force=1

VERSION=$(sed -n 's/^__version__ = "\(.*\)"/\1/p' medview/__init__.py)
ARCH=$(dpkg --print-architecture 2>/dev/null || echo amd64)
case "$(uname -m)" in x86_64) TARCH=x86_64 ;; *) TARCH=$(uname -m) ;; esac
DEB=$DIST/medview_${VERSION}_${ARCH}.deb
TARBALL=$DIST/medview-${VERSION}-linux-${TARCH}.tar.gz
BUNDLE=$BUILD/bundle/medview

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
say() { echo "packaging: $*"; }

# everything the packages are made of; the stamp of the last build is its hash
inputs_hash() {
  { git ls-files -co --exclude-standard pyproject.toml medview resources packaging 2>/dev/null \
      || find pyproject.toml medview resources packaging -type f; } \
    | grep -v -E '(__pycache__|\.pyc$|^packaging/.*\.md$)' | LC_ALL=C sort | while read -r f; do
      [ -f "$f" ] && sha256sum "$f"
    done | sha256sum | cut -c1-16
}
stamp=$(inputs_hash)
if [ "$force" = 0 ] && [ -f "$DIST/.build-stamp" ] && [ "$(cat "$DIST/.build-stamp")" = "$stamp" ] \
    && [ -f "$DEB" ] && [ -f "$TARBALL" ] && [ -x "$BUNDLE/medview" ]; then
  say "up to date ($DEB, $TARBALL); --force rebuilds"
  exit 0
fi
rm -f "$DIST/.build-stamp"
mkdir -p "$BUILD" "$DIST"
t_all=$(now)

# 1. the build environment -----------------------------------------------------------------
VENV=$BUILD/venv
# made again only when the dependencies change (not for other edits of pyproject.toml)
deps=$({ "$PY" -c 'import json, tomllib
p = tomllib.load(open("pyproject.toml", "rb"))["project"]
print(json.dumps([p["requires-python"], p["dependencies"], p["optional-dependencies"]["gui"]]))'
  cat packaging/build-requirements.txt; } | sha256sum | cut -c1-16)
t=$(now)
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.deps" 2>/dev/null)" != "$deps" ]; then
  say "making the build environment $VENV"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  nice "$VENV/bin/python" -m pip install -q --upgrade pip
  # runtime dependencies and the gui extra only: PyInstaller collects whatever is installed
  nice "$VENV/bin/python" -m pip install -q ".[gui]" -r packaging/build-requirements.txt
  echo "$deps" > "$VENV/.deps"
fi
t_venv=$(elapsed "$t")

# 2. the bundle ---------------------------------------------------------------------------
say "PyInstaller one-folder bundle (log: $BUILD/pyinstaller.log)"
t=$(now)
rm -rf "$BUILD/bundle"
if ! nice "$VENV/bin/python" -m PyInstaller --noconfirm --log-level WARN \
    --distpath "$BUILD/bundle" --workpath "$BUILD/work" packaging/medview.spec \
    > "$BUILD/pyinstaller.log" 2>&1; then
  tail -40 "$BUILD/pyinstaller.log" >&2
  exit 1
fi
t_bundle=$(elapsed "$t")
got=$("$BUNDLE/medview" --version)
[ "$got" = "medview $VERSION" ] || { echo "bundle says '$got', expected medview $VERSION" >&2; exit 1; }

# 3a. the .deb ----------------------------------------------------------------------------
say "Debian package"
t=$(now)
ROOT=$BUILD/deb-root
rm -rf "$ROOT"
mkdir -p "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/DEBIAN"
cp -a "$BUNDLE" "$ROOT/opt/medview"
# across top-level directories a link is absolute (Debian policy 10.5)
ln -s /opt/medview/medview "$ROOT/usr/bin/medview"
# libraries from the wheels come with the executable bit, and a stray VCS file with nibabel
find "$ROOT/opt/medview/_internal" -type f -name '*.so*' -exec chmod 644 {} +
find "$ROOT/opt/medview/_internal" -name .gitignore -delete
install -D -m 644 packaging/linux/medview.desktop "$ROOT/usr/share/applications/medview.desktop"
install -D -m 644 packaging/linux/medview-open-folder.desktop \
  "$ROOT/usr/share/applications/medview-open-folder.desktop"
install -D -m 644 packaging/linux/medview-mime.xml "$ROOT/usr/share/mime/packages/medview.xml"
install -D -m 644 packaging/icons/medview.svg "$ROOT/usr/share/icons/hicolor/scalable/apps/medview.svg"
for s in 48 128 256; do
  install -D -m 644 "packaging/icons/medview-$s.png" \
    "$ROOT/usr/share/icons/hicolor/${s}x${s}/apps/medview.png"
done
install -D -m 644 packaging/linux/copyright "$ROOT/usr/share/doc/medview/copyright"
printf 'medview (%s) unstable; urgency=medium\n\n  * Built from %s.\n\n -- %s  %s\n' \
  "$VERSION" "$(git describe --always --dirty 2>/dev/null || echo 'a source tree')" \
  "$(sed -n 's/^Maintainer: //p' packaging/linux/control.in)" "$(date -R)" \
  | gzip -9n > "$ROOT/usr/share/doc/medview/changelog.gz"
chmod -R u+rwX,go+rX,go-w "$ROOT"
size_kb=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@SIZE@/$size_kb/" \
  packaging/linux/control.in > "$ROOT/DEBIAN/control"
nice dpkg-deb --root-owner-group -Zzstd --build "$ROOT" "$DEB.part" > /dev/null
mv "$DEB.part" "$DEB"
rm -rf "$ROOT"
t_deb=$(elapsed "$t")

# 3b. the tarball -------------------------------------------------------------------------
say "tarball"
t=$(now)
gz=gzip
command -v pigz > /dev/null && gz=pigz
# with a script that adds the desktop entry and icon for the user who unpacked it
EXTRA=$BUILD/tar-extra
rm -rf "$EXTRA"
install -D -m 755 packaging/linux/install-desktop-entry.sh "$EXTRA/medview/install-desktop-entry.sh"
install -D -m 644 packaging/linux/medview.desktop "$EXTRA/medview/share/medview.desktop"
install -D -m 644 packaging/icons/medview.svg "$EXTRA/medview/share/medview.svg"
tar -cf - -C "$BUILD/bundle" medview -C "$EXTRA" medview/install-desktop-entry.sh medview/share \
  | nice $gz -6 > "$TARBALL.part"
mv "$TARBALL.part" "$TARBALL"
t_tar=$(elapsed "$t")

bundle_mb=$(du -sm "$BUNDLE" | cut -f1)
deb_mb=$(awk -v b="$(stat -c %s "$DEB")" 'BEGIN { printf "%.1f", b / 1048576 }')
tar_mb=$(awk -v b="$(stat -c %s "$TARBALL")" 'BEGIN { printf "%.1f", b / 1048576 }')
total=$(elapsed "$t_all")
cat > "$DIST/build-figures.json" <<EOF
{"version": "$VERSION", "seconds": {"environment": $t_venv, "bundle": $t_bundle, "deb": $t_deb,
 "tarball": $t_tar, "total": $total},
 "mb": {"bundle": $bundle_mb, "deb": $deb_mb, "tarball": $tar_mb}}
EOF
echo "$stamp" > "$DIST/.build-stamp"
say "done in ${total} s (environment ${t_venv} s, bundle ${t_bundle} s, .deb ${t_deb} s, tarball ${t_tar} s)"
say "bundle $BUNDLE: ${bundle_mb} MB"
say "$DEB: ${deb_mb} MB"
say "$TARBALL: ${tar_mb} MB"
