"""The medview command, run as a user runs it: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from phantoms import write_ct_series


def medview(*args: str, db=None, check: bool = False) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if db is not None:
        env["MEDVIEW_DB"] = str(db)
    proc = subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def ct(tmp_path):
    folder = tmp_path / "ct"
    write_ct_series(folder, shape=(6, 24, 20), spacing_xyz=(0.7, 0.8, 2.5), seed=9,
                    series_description="CLI test")
    return folder


def test_series_json_describes_the_series(ct):
    proc = medview("series", ct, "--json", check=True)
    out = json.loads(proc.stdout)
    (s,) = out["series"]
    assert s["modality"] == "CT" and s["instances"] == 6
    assert s["shape"] == [6, 24, 20]
    np.testing.assert_allclose(s["spacing"], [0.7, 0.8, 2.5])
    assert s["description"] == "CLI test" and s["warnings"] == []


def test_series_lists_unreadable_files(ct):
    (ct / "broken.dcm").write_bytes(b"DICM" * 10)
    proc = medview("series", ct, check=True)
    assert "broken.dcm" in proc.stderr and "unreadable" in proc.stderr


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".nrrd", ".mha"])
def test_convert_writes_each_format_with_geometry(ct, tmp_path, suffix):
    from medview.dicom.series.loading import load
    from medview.formats.volume_io import read_volume

    out = tmp_path / f"out{suffix}"
    proc = medview("convert", ct, out, check=True)
    assert "wrote" in proc.stdout
    ref = load(ct)
    back = read_volume(out)
    np.testing.assert_array_equal(back.array, ref.array)
    np.testing.assert_allclose(back.affine, ref.affine, atol=1e-4)


def test_convert_refuses_to_overwrite_and_reports_errors(ct, tmp_path):
    out = tmp_path / "x.nrrd"
    out.write_text("keep me")
    proc = medview("convert", ct, out)
    assert proc.returncode == 1 and "exists" in proc.stderr and out.read_text() == "keep me"
    proc = medview("convert", tmp_path / "missing", tmp_path / "y.nii")
    assert proc.returncode == 1 and "no such file" in proc.stderr
    proc = medview("convert", ct, tmp_path / "y.bmp")
    assert proc.returncode == 1 and "unknown volume format" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "y.bmp").exists()


def test_convert_with_several_series_lists_them(ct, tmp_path):
    write_ct_series(ct.parent / "ct" / "second", shape=(3, 8, 8), seed=10,
                    series_description="second")
    proc = medview("convert", ct, tmp_path / "z.nii")
    assert proc.returncode == 1
    assert "holds 2 series" in proc.stderr and "--series" in proc.stderr


def test_index_then_convert_by_uid(ct, tmp_path):
    db = tmp_path / "cat.sqlite"
    proc = medview("index", ct, db=db, check=True)
    assert "6 added" in proc.stdout
    again = medview("index", ct, db=db, check=True)
    assert "0 added" in again.stdout and "6 unchanged" in again.stdout
    uid = json.loads(medview("series", ct, "--json", check=True).stdout)["series"][0]["series_uid"]
    out = tmp_path / "by_uid.nrrd"
    medview("convert", uid, out, db=db, check=True)
    assert out.exists()


def test_index_reports_unreadable_files(ct, tmp_path):
    (ct / "junk.bin").write_bytes(os.urandom(3000))
    proc = medview("index", ct, db=tmp_path / "c.sqlite", check=True)
    assert "1 unreadable" in proc.stdout and "junk.bin" in proc.stderr


def test_version_and_help():
    assert "medview" in medview("--version", check=True).stdout
    helptext = medview("convert", "--help", check=True).stdout
    assert "--series" in helptext and "NIfTI" in helptext


@pytest.mark.parametrize("where", ["before", "after"])
def test_global_options_work_before_or_after_the_command(ct, tmp_path, where):
    db = tmp_path / "chosen.sqlite"
    args = (["--db", db, "--max-errors", "0", "index", ct] if where == "before"
            else ["index", ct, "--db", db, "--max-errors", "0"])
    env_db = tmp_path / "env.sqlite"
    proc = medview(*args, db=env_db, check=True)  # $MEDVIEW_DB names another file
    assert "6 added" in proc.stdout
    assert db.is_file() and not env_db.exists()


def test_each_subcommands_help_names_it_after_medview():
    import argparse

    from medview.cli import build_parser

    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    for name, parser in sub.choices.items():
        assert parser.format_usage().startswith(f"usage: medview {name} "), name


def test_the_command_table_names_each_groups_commands():
    """``medview X`` builds only the parsers of X's group (start-up): the table that maps
    commands to groups must say what the groups' modules really add."""
    import argparse

    from medview.cli import _GROUPS, COMMANDS, build_parser

    def commands_of(groups):
        (sub,) = [a for a in build_parser(groups)._actions
                  if isinstance(a, argparse._SubParsersAction)]
        return set(sub.choices)

    assert commands_of(None) == set(COMMANDS)
    for group in _GROUPS:
        assert commands_of([group]) == {c for c, g in COMMANDS.items() if g == group}, group
    assert commands_of(()) == set()


def test_help_shows_the_path_argument_and_the_global_options():
    helptext = medview("--help", check=True).stdout
    assert "[PATH]" in helptext and "PATH:" in helptext
    assert "--db PATH" in helptext and "before or after the COMMAND" in helptext


def test_without_the_gui_extra_the_window_says_how_to_install_it(tmp_path):
    from medview.cli.gui import missing_gui_modules

    # in the headless environment Qt is really missing; beside Qt it is made unimportable
    # the way a missing package is (find_spec gives None)
    hide = "" if missing_gui_modules() else "sys.modules['PySide6'] = None; "
    code = f"import sys; {hide}from medview.cli import main; sys.exit(main([]))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 1
    assert "pip install 'medview[gui]'" in proc.stderr and "PySide6" in proc.stderr
    assert "Traceback" not in proc.stderr
