"""Each command imports only what it uses: ``medview --version`` and ``medview index`` must
not load the step registry, NumPy-heavy libraries or pydicom (they set the start-up time,
measured by benchmarks/scale.py; here we check *which* modules a real process loads)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from realparts import DATA, require

HEAVY = ("medview.pipeline.registry", "medview.pipeline.chain", "numpy", "scipy", "skimage",
         "sklearn", "SimpleITK", "pydicom", "PySide6", "highdicom")

# run the real entry point, then print the modules the process holds
_PROBE = (
    "import json, sys\n"
    "from medview.cli import main\n"
    "try:\n"
    "    code = main(sys.argv[1:])\n"
    "except SystemExit as exc:\n"
    "    code = exc.code\n"
    "print('\\nMODULES' + json.dumps(sorted(sys.modules)))\n"
)


def loaded_modules(*args: str, db=None) -> tuple[set[str], str]:
    env = dict(os.environ)
    if db is not None:
        env["MEDVIEW_DB"] = str(db)
    proc = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args)], capture_output=True,
                          text=True, env=env, timeout=120)
    head, _, mods = proc.stdout.rpartition("\nMODULES")
    assert mods, proc.stderr
    return set(json.loads(mods)), head + proc.stderr


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY or m in HEAVY)


@pytest.mark.parametrize("args", [("--version",), ("index", "--help"), ("--help",)])
def test_help_and_version_load_nothing_heavy(args):
    modules, out = loaded_modules(*args)
    assert "medview" in out
    assert heavy(modules) == []


def test_index_loads_nothing_heavy_first_time_and_again(tmp_path):
    folder = DATA / "dcm_qa_ct"
    require(folder.is_dir(), f"test data {folder}")
    db = tmp_path / "c.db"
    # the first import reads every file, junk and DICOMDIRs included (their SOP class is
    # named in the error without importing pydicom)
    modules, out = loaded_modules("index", folder, db=db)
    assert "added" in out and "0 added" not in out
    assert heavy(modules) == []
    modules, out = loaded_modules("index", folder, db=db)
    assert "0 added" in out and "unchanged" in out
    assert heavy(modules) == []
    # nothing to read: no scan pool, not even its machinery
    assert "concurrent.futures.process" not in modules and "multiprocessing" not in modules


def test_unreadable_dicomdir_is_named_without_pydicom(tmp_path):
    folder = DATA / "dcm_qa_ct"
    require(folder.is_dir(), f"test data {folder}")
    modules, out = loaded_modules("index", folder, "--max-errors", "100", db=tmp_path / "c.db")
    assert "DIRFILE: no pixel data" in out
    assert "SOP class: Media Storage Directory Storage" in out
    assert "pydicom" not in modules


def test_truncated_file_is_named_without_pydicom(tmp_path):
    source = DATA / "kits_dupe_positions" / "CT2.dcm"
    require(source.is_file(), f"test data {source}")
    folder = tmp_path / "in"
    folder.mkdir()
    data = source.read_bytes()
    (folder / "cut.dcm").write_bytes(data[: len(data) // 2])
    modules, out = loaded_modules("index", folder, db=tmp_path / "c.db")
    assert "cut.dcm: truncated" in out and "(7FE0,0010) PixelData" in out
    assert "pydicom" not in modules
