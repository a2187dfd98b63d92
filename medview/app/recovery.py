"""Autosaved label maps and scribbles, for the start after a crash (plain Python, no Qt).

One file per series and kind (``labels``/``scribbles``) in the recovery folder
(``$MEDVIEW_RECOVERY_DIR``, else ``recovery`` in the user data folder — ``$MEDVIEW_DATA_DIR``
or platformdirs'), written atomically (a temporary file renamed into place: a crash during a
write leaves the previous autosave). The file is an uncompressed NPZ of plain arrays (never
pickles: :func:`numpy.load` with ``allow_pickle=False``): the labels, zlib-compressed (a label
map is mostly zeros: level 1 is fast and ~50× smaller), and a JSON header with the series UID,
the grid and the segments. The folder is the user's own (0700): it holds patient data.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from medview.core.labelmap import LabelMap, Segment

__all__ = ["RECOVERY_ENV", "RecoveryEntry", "RecoveryError", "RecoveryStore", "recovery_dir"]

RECOVERY_ENV = "MEDVIEW_RECOVERY_DIR"
KINDS = ("labels", "scribbles")
FORMAT = "medview-recovery"
#: a recovery file never holds more voxels than this (what the header claims is checked
#: against it before anything is decompressed)
MAX_VOXELS = 2**31


class RecoveryError(ValueError):
    """A recovery file that cannot be restored (names the file and the reason)."""


def recovery_dir() -> Path:
    """``$MEDVIEW_RECOVERY_DIR``, else ``recovery`` in ``$MEDVIEW_DATA_DIR`` or the user
    data folder (platformdirs)."""
    from medview.privatedirs import recovery_dir as folder

    return folder()


@dataclass(frozen=True)
class RecoveryEntry:
    """One autosaved label map (its header; :meth:`RecoveryStore.load` reads the voxels)."""

    path: Path
    series_uid: str
    kind: str
    saved_at: float
    shape: tuple[int, int, int]
    segments: tuple[Segment, ...]
    description: str = ""

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.saved_at))
        what = "label map" if self.kind == "labels" else "scribbles"
        return f"{what} of {self.description or self.series_uid} (autosaved {when})"


def _segment_dict(s: Segment) -> dict:
    return {"number": s.number, "name": s.name, "color": list(s.color),
            "category": list(s.category), "type": list(s.type)}


def _segment(d: dict) -> Segment:
    return Segment(int(d["number"]), str(d["name"]), tuple(int(c) for c in d["color"]),
                   tuple(str(c) for c in d["category"]), tuple(str(c) for c in d["type"]))


class RecoveryStore:
    """The recovery folder.

    Parameters
    ----------
    folder : path, optional
        Default :func:`recovery_dir`.
    """

    def __init__(self, folder: str | os.PathLike | None = None):
        self.folder = Path(folder) if folder is not None else recovery_dir()

    def path_for(self, series_uid: str, kind: str) -> Path:
        if kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
        key = hashlib.sha256(series_uid.encode("utf-8")).hexdigest()[:20]
        return self.folder / f"{key}.{kind}.npz"

    def save(self, series_uid: str, kind: str, labels: LabelMap, *,
             description: str = "") -> Path:
        """Write ``labels`` (of series ``series_uid``) atomically; returns the file."""
        if not series_uid:
            raise ValueError("series_uid: a recovery file needs the series it belongs to")
        path = self.path_for(series_uid, kind)
        arr = np.ascontiguousarray(labels.array)
        header = {"format": FORMAT, "version": 1, "series_uid": series_uid, "kind": kind,
                  "saved_at": time.time(), "shape": list(arr.shape), "dtype": arr.dtype.str,
                  "spacing": list(map(float, labels.spacing)),
                  "origin": list(map(float, labels.origin)),
                  "direction": np.asarray(labels.direction, float).tolist(),
                  "segments": [_segment_dict(s) for s in labels.segments],
                  "description": description}
        buf = io.BytesIO()
        np.savez(buf, header=np.array(json.dumps(header)),
                 labels=np.frombuffer(zlib.compress(arr.tobytes(), 1), np.uint8))
        from medview.privatedirs import private_folder

        private_folder(self.folder)  # also tightens one an older medview left wider
        from medview.atomic import write_bytes_atomic

        write_bytes_atomic(path, buf.getbuffer(), mode=0o600)  # labels of a patient: 0600
        return path

    def _header(self, path: Path) -> dict:
        try:
            with np.load(path, allow_pickle=False) as z:
                header = json.loads(str(z["header"]))
        except (OSError, ValueError, KeyError, zlib.error) as exc:
            raise RecoveryError(f"{path}: not a readable recovery file ({exc})") from None
        if header.get("format") != FORMAT or header.get("kind") not in KINDS:
            raise RecoveryError(f"{path}: not a medview recovery file")
        return header

    def entries(self) -> list[RecoveryEntry]:
        """The recovery files, newest first (unreadable ones are skipped)."""
        out = []
        if not self.folder.is_dir():
            return out
        for path in sorted(self.folder.glob("*.npz")):
            try:
                h = self._header(path)
                out.append(RecoveryEntry(path, str(h["series_uid"]), str(h["kind"]),
                                         float(h["saved_at"]), tuple(h["shape"]),
                                         tuple(_segment(d) for d in h["segments"]),
                                         str(h.get("description", ""))))
            except (RecoveryError, KeyError, TypeError, ValueError):
                continue
        return sorted(out, key=lambda e: e.saved_at, reverse=True)

    def load(self, entry: RecoveryEntry, volume) -> LabelMap:
        """The label map of ``entry`` on ``volume`` (the series it was drawn on).

        Raises
        ------
        RecoveryError
            If the file is damaged or ``volume`` has another grid.
        """
        h = self._header(entry.path)
        shape = tuple(int(n) for n in h["shape"])
        if len(shape) != 3 or min(shape) < 1 or int(np.prod(shape)) > MAX_VOXELS:
            raise RecoveryError(f"{entry.path}: implausible shape {shape}")
        if shape != tuple(volume.shape[:3]):
            raise RecoveryError(f"{entry.path}: drawn on a grid of {shape}, the series has "
                                f"{tuple(volume.shape[:3])}")
        dtype = np.dtype(h["dtype"])
        if dtype.kind not in "iub":
            raise RecoveryError(f"{entry.path}: labels of type {dtype} are not labels")
        size = int(np.prod(shape)) * dtype.itemsize
        with np.load(entry.path, allow_pickle=False) as z:
            packed = z["labels"].tobytes()
        inflate = zlib.decompressobj()
        try:
            raw = inflate.decompress(packed, size)  # never more than the grid holds
        except zlib.error as exc:
            raise RecoveryError(f"{entry.path}: damaged ({exc})") from None
        if len(raw) != size or inflate.unconsumed_tail:
            raise RecoveryError(f"{entry.path}: holds {len(raw)} bytes of labels, the grid "
                                f"needs {size}")
        arr = np.frombuffer(raw, dtype).reshape(shape).copy()
        segments = tuple(_segment(d) for d in h["segments"])
        return LabelMap.like(volume, arr, segments)

    def remove(self, paths) -> None:
        """Delete these recovery files (missing ones are fine)."""
        for path in paths:
            Path(path).unlink(missing_ok=True)
