#!/bin/sh
# Put medview in this user's application menu, from the unpacked tarball (the .deb does this
# for the whole system): a desktop entry with the icon and the DICOM association, running the
# medview beside this script. --remove takes them out again. No root rights needed.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
data=${XDG_DATA_HOME:-$HOME/.local/share}
apps=$data/applications
icon=$data/icons/hicolor/scalable/apps/medview.svg
if [ "${1:-}" = "--remove" ]; then
  rm -f "$apps/medview.desktop" "$icon"
  echo "medview removed from the application menu"
  exit 0
fi
mkdir -p "$apps" "$(dirname "$icon")"
cp "$here/share/medview.svg" "$icon"
# the system entry, with this folder's medview (quoted: the path may hold spaces)
sed -e "s|^Exec=medview |Exec=\"$here/medview\" |" -e "s|^TryExec=medview\$|TryExec=$here/medview|" \
  "$here/share/medview.desktop" > "$apps/medview.desktop.part"
mv "$apps/medview.desktop.part" "$apps/medview.desktop"
command -v update-desktop-database > /dev/null && update-desktop-database "$apps" 2> /dev/null || true
echo "medview added to the application menu ($apps/medview.desktop)"
