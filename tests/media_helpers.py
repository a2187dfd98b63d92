"""Test helper: write a DICOM medium (files + DICOMDIR) with pydicom's FileSet."""

from __future__ import annotations

import gc
import warnings
from pathlib import Path


def make_dicomdir(files, out: Path) -> Path:
    """Copy ``files`` into the medium ``out`` with a DICOMDIR; returns the DICOMDIR's path."""
    import pydicom
    from pydicom.fileset import FileSet

    fs = FileSet()
    for f in files:
        fs.add(pydicom.dcmread(f))
    fs.write(out)
    with warnings.catch_warnings():
        # FileSet keeps a staging TemporaryDirectory that it never cleans up explicitly
        warnings.simplefilter("ignore", ResourceWarning)
        del fs
        gc.collect()
    return Path(out) / "DICOMDIR"
