"""Layout rules (medview.app.hanging) picked by real headers, series assigned to panes from
the catalog, saved and read back."""

from __future__ import annotations

import json
import os

import pytest
from realparts import require

from medview.app.hanging import (
    BUILTIN_RULES,
    LayoutRule,
    assign_series,
    load_rules,
    pick_rule,
    rules_path,
    save_rules,
    window_for,
)
from medview.dicom.catalog.db import Catalog
from medview.dicom.catalog.priors import patient_series, series_facts

FOLDERS = {"philips_ct": "dcm_qa_ct/In/Philips/S21610/S2010",
           "ge_head": "dcm_qa_ct/In/GE",
           "kits": "kits_dupe_positions",
           "hfs": "dcm_qa_decubitus/In/HFS",
           "hfdl": "dcm_qa_decubitus/In/HFDL"}


@pytest.fixture(scope="module")
def catalog(data_dir, tmp_path_factory):
    for folder in FOLDERS.values():
        require((data_dir / folder).is_dir(), f"real series at {data_dir / folder}")
    cat = Catalog(tmp_path_factory.mktemp("catalog") / "catalog.sqlite")
    cat.index([data_dir / f for f in FOLDERS.values()])
    uids = {}
    for record in cat.series():
        path = str(cat.instances(record.uid)[0].path)
        name = next(k for k, f in FOLDERS.items() if f"/{f}/" in path)
        uids[name] = record.uid
    yield cat, uids
    cat.close()


@pytest.mark.parametrize(("name", "rule", "window"), [
    ("philips_ct", "CT head", (40.0, 80.0)),  # BodyPartExamined BRAIN
    ("ge_head", "CT head", (40.0, 80.0)),  # HEAD
    ("kits", "CT", None),  # no body part: the CT rule, the series' own window
    ("hfs", "MR brain", "auto"),
])
def test_the_rule_is_picked_by_the_real_header(catalog, name, rule, window):
    cat, uids = catalog
    facts = series_facts(cat, uids[name])
    picked = pick_rule(BUILTIN_RULES, facts)
    assert picked is not None and picked.name == rule
    assert window_for(picked, facts.modality) == window


def test_the_prior_goes_beside_the_current_series(catalog):
    cat, uids = catalog
    current = series_facts(cat, uids["hfs"])
    rule = pick_rule(BUILTIN_RULES, current)
    panes = assign_series(rule, current, patient_series(cat, current.uid))
    assert rule.layout == "2x2" and len(panes) == 4
    assert [p.uid if p else None for p in panes] == [uids["hfs"], uids["hfdl"], None, None]
    # a head CT of a patient without priors: the second pane stays empty
    ct = series_facts(cat, uids["ge_head"])
    assert [p.uid if p else None for p in assign_series(
        pick_rule(BUILTIN_RULES, ct), ct, patient_series(cat, ct.uid))] == [uids["ge_head"],
                                                                           None]


def test_a_description_rule_wins_when_listed_first(catalog):
    cat, uids = catalog
    facts = series_facts(cat, uids["hfdl"])
    mine = LayoutRule("sagittal T1 alone", "MR", "", "*t1*sag*", "1x1", ("current",), "")
    assert pick_rule([mine, *BUILTIN_RULES], facts) is mine
    assert pick_rule([LayoutRule("PET", "PT"), *BUILTIN_RULES], facts).name == "MR brain"
    # "same:" takes a series of the same study by description; "prior:" one of another
    same = LayoutRule("x", "MR", slots=("current", "prior:*T1*"))
    assert [p.uid for p in assign_series(same, facts, patient_series(cat, facts.uid))] == [
        uids["hfdl"], uids["hfs"]]


def test_rules_are_saved_atomically_and_read_back():
    path = rules_path()
    assert str(path).startswith(os.environ["MEDVIEW_CONFIG_DIR"])
    assert load_rules() == list(BUILTIN_RULES)  # nothing saved: the built-in set
    mine = [LayoutRule("CT lung", "CT", "", "*lung*|*thorax*", "2x2",
                       ("current", "prior", "same:*mediast*"), "lung"), *BUILTIN_RULES[:2]]
    assert save_rules(mine) == path
    assert load_rules() == mine
    assert json.loads(path.read_text())["rules"][0]["slots"] == ["current", "prior",
                                                                 "same:*mediast*"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary left


@pytest.mark.parametrize(("text", "reason"), [
    ("{", "not a valid layout rules file"),
    ('{"rules": [{"name": "a", "layout": "3x3"}]}', "layout '3x3'"),
    ('{"rules": [{"name": "a", "slots": ["left"]}]}', "slot 'left'"),
    ('{"rules": [{"name": "a", "window": "purple"}]}', "window 'purple'"),
    ('{"rules": [{"name": "a", "colour": 1}]}', "unknown fields"),
])
def test_a_bad_rules_file_names_the_file_and_the_reason(text, reason):
    path = rules_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    with pytest.raises(ValueError, match=reason) as info:
        load_rules()
    assert str(path) in str(info.value)
