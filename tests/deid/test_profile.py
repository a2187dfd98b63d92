"""The action table is the standard's (generated, edition recorded) and the options change it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from realparts import REPO

from medview.deid import _table
from medview.deid.profile import Options, action_table


def test_committed_table_is_what_the_generator_makes_from_the_stored_source():
    spec = importlib.util.spec_from_file_location("gen", REPO / "scripts" / "gen_deid_table.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    made = gen.generate(gen.SOURCE, "2024b")
    assert made == (REPO / "medview" / "deid" / "_table.py").read_text()
    assert _table.EDITION == "2024b" and "innolitics/dicom-standard" in _table.SOURCE
    assert len(_table.TABLE) > 600   # every row of Table E.1-1 (621 with the patterns)


def test_option_columns_change_the_actions():
    basic, _ = action_table(Options())
    assert basic[0x00100040] == "Z"            # Patient's Sex
    assert basic[0x00080020] == "Z"            # Study Date
    assert basic[0x0008103E] == "X"            # Series Description
    assert basic[0x00181000] == "D"            # Device Serial Number (X/Z/D resolved)
    assert basic[0x0020000D] == "U"
    opts = Options(retain_dates_modified=True, retain_patient_characteristics=True,
                   clean_descriptors=True, retain_device_identity=True)
    chosen, _ = action_table(opts)
    assert chosen[0x00100040] == "K"
    assert chosen[0x00080020] == "C"
    assert chosen[0x0008103E] == "C"
    assert chosen[0x00181000] == "K"
    assert chosen[0x00100010] == "Z"           # the name stays out whatever the options


def test_exclusive_date_options_are_refused():
    import pytest

    with pytest.raises(ValueError, match="exclude each other"):
        Options(retain_dates_modified=True, retain_dates_full=True)


def test_source_licence_is_kept_beside_the_source():
    folder = Path(REPO / "scripts" / "deid_source")
    assert "Innolitics" in (folder / "LICENSE.txt").read_text()
