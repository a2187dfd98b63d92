"""``medview catalog wipe``: remove what medview keeps about patients on this workstation.

Removed: the catalog (and SQLite's -wal/-shm), the cache (thumbnails), recovery files, the
PACS store (copies medview retrieved or received), offload mappings and downloads, logs, every
other file in medview's data folder (what newer features keep there: share mappings, backup
journals …), and the last folder opened from the window's settings. Kept: the DICOM folders
the user imported (medview never wrote them and never deletes them), the configuration
(endpoints, PACS nodes, keys: no patient data), the disclosure audit log (series UIDs, no names;
``include_audit=True`` removes it too) and an offload server's state folder (``server/``: jobs
of de-identified volumes, owned by the server).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WipeItem", "plan_wipe", "run_wipe"]

#: entries of the data folder the wipe leaves unless asked (see the module docstring)
KEPT = {"audit.log": "the disclosure audit log (series UIDs, OS user, destination; no names)",
        "server": "an offload server's state (de-identified jobs; stop the server and delete "
                  "it yourself if this machine was one)"}


@dataclass
class WipeItem:
    """One thing to remove: what it is, where, how much."""

    what: str
    path: Path
    files: int = 0
    bytes: int = 0
    removed: bool = False


def _size(path: Path) -> tuple[int, int]:
    if path.is_symlink() or path.is_file():
        return 1, path.lstat().st_size
    files = size = 0
    for folder, _, names in os.walk(path):
        for name in names:
            try:
                size += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                continue
            files += 1
    return files, size


def _settings_file() -> Path | None:
    """The window's ini settings (``$MEDVIEW_SETTINGS``, else Qt's file on Linux/BSD)."""
    env = os.environ.get("MEDVIEW_SETTINGS")
    if env:
        return Path(env)
    if os.name != "posix" or os.uname().sysname == "Darwin":
        return None  # the registry / a plist: the window's "Clear recent" is the way there
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.expanduser("~/.config")
    return Path(base) / "medview" / "medview.conf"


def plan_wipe(*, catalog: str | os.PathLike | None = None,
              include_audit: bool = False) -> list[WipeItem]:
    """What :func:`run_wipe` would remove (only what exists), nothing removed yet."""
    from medview import privatedirs
    from medview.userconfig import data_dir

    data = data_dir()
    db = Path(catalog) if catalog else privatedirs.catalog_path()
    candidates: list[tuple[str, Path]] = [
        ("catalog (names, IDs, birth dates, studies, file paths)", db),
        ("catalog write-ahead log", Path(f"{db}-wal")),
        ("catalog shared memory", Path(f"{db}-shm")),
        ("catalog journal", Path(f"{db}-journal")),
        ("cache (series thumbnails)", privatedirs.cache_dir()),
        ("recovery files (autosaved label maps)", privatedirs.recovery_dir()),
        ("PACS store (instances medview retrieved or received)", privatedirs.pacs_dir()),
        ("offload pseudonym mappings", data / "offload-jobs"),
        ("offload downloads", data / "offload-downloads"),
        ("logs", privatedirs.log_dir()),
    ]
    if include_audit:
        candidates.append(("disclosure audit log", data / "audit.log"))
    named = {p.resolve() for _, p in candidates}
    from medview.userconfig import config_dir

    config = config_dir().resolve()
    # a data folder that is also the config folder: only the named items (never the config)
    if data.is_dir() and data.resolve() != config:
        for entry in sorted(data.iterdir()):
            if entry.name in KEPT and not (include_audit and entry.name == "audit.log"):
                continue
            if entry.resolve() not in named | {db.resolve(), config}:
                candidates.append((f"other data of medview ({entry.name})", entry))
    items = []
    seen: set[Path] = set()
    for what, path in candidates:
        if not (path.exists() or path.is_symlink()) or path.resolve() in seen:
            continue
        seen.add(path.resolve())
        files, size = _size(path)
        items.append(WipeItem(what, path, files, size))
    settings = _settings_file()
    if settings is not None and settings.is_file() and _last_folder_lines(settings):
        items.append(WipeItem("the last folder opened (window settings)", settings))
    return items


def _last_folder_lines(path: Path) -> list[int]:
    """Line numbers of ``last_folder=`` in the ``[import]`` section of a Qt ini file."""
    out, section = [], ""
    for i, line in enumerate(path.read_text(errors="replace").splitlines()):
        s = line.strip()
        if s.startswith("[") and s.endswith("]"):
            section = s[1:-1]
        elif section == "import" and s.split("=", 1)[0].strip() == "last_folder":
            out.append(i)
    return out


def run_wipe(items: list[WipeItem]) -> list[WipeItem]:
    """Remove each planned item; returns them with ``removed`` set.

    Raises
    ------
    OSError
        Naming the path, when one cannot be removed (the others already removed stay so;
        running the wipe again finishes it).
    """
    for item in items:
        path = item.path
        try:
            if item.what.startswith("the last folder opened"):
                lines = path.read_text(errors="replace").splitlines(keepends=True)
                drop = set(_last_folder_lines(path))
                path.write_text("".join(x for i, x in enumerate(lines) if i not in drop))
            elif path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)
        except OSError as exc:
            raise OSError(f"{path}: could not remove it ({exc.strerror or exc}); nothing else "
                          "was left half-done: run the wipe again") from None
        item.removed = True
    return items
