"""The engine on the privacy set: every required action done, pseudonyms and dates per project."""

from __future__ import annotations

import os
import stat

import pydicom
from privacy_set import NAME, PLANTED, score

from medview.deid.engine import MAX_DEPTH, Deidentifier, Tally
from medview.deid.keys import project_key, record_mapping
from medview.deid.profile import Options


def _run(files, project="p1", options=None):
    engine = Deidentifier(project_key(project), options or Options())
    pairs = []
    for f in files:
        out = pydicom.dcmread(f)
        engine.deidentify(out, Tally())
        pairs.append((pydicom.dcmread(f), out))
    return engine, pairs


def test_basic_profile_scores_100_percent(deid_home, privacy_files):
    _engine, pairs = _run(privacy_files)
    s = score(pairs)
    assert s.total > 250
    assert s.fraction == 1.0, s.failures
    for _src, out in pairs:
        assert out.LongitudinalTemporalInformationModified == "REMOVED"
        assert out.DeidentificationMethodCodeSequence[0].CodeValue == "113100"


def test_options_score_100_percent_and_keep_what_they_promise(deid_home, privacy_files):
    opts = Options(retain_dates_modified=True, retain_patient_characteristics=True,
                   clean_descriptors=True, retain_device_identity=True)
    engine, pairs = _run(privacy_files, options=opts)
    # with Retain Device Identity the planted serial and station stay (that is the option)
    s = score(pairs)
    left = {f.split(":")[0].split()[-1] for f in s.failures}
    assert left <= {"DeviceSerialNumber", "StationName"}, s.failures
    offset = engine.key.date_offset(PLANTED["PatientID"])
    for src, out in pairs:
        shifted = (pydicom.valuerep.DA(src.StudyDate) - offset).strftime("%Y%m%d")
        assert out.StudyDate == shifted != src.StudyDate
        assert out.LongitudinalTemporalInformationModified == "MODIFIED"
        assert out.PatientSex == src.PatientSex
        # cleaned: the names and the ID gone, the rest of the description kept
        assert out.StudyDescription == "CT for"
        assert out.SeriesDescription == "follow-up"
        assert {c.CodeValue for c in out.DeidentificationMethodCodeSequence} == {
            "113100", "113107", "113108", "113105", "113109"}


def test_same_patient_same_pseudonym_in_a_project_other_across(deid_home, privacy_files):
    a1, pairs1 = _run(privacy_files[:2], "alpha")
    _a2, pairs2 = _run(privacy_files[2:4], "alpha")
    _b, pairs3 = _run(privacy_files[:2], "beta")
    p1 = {str(o.PatientID) for _s, o in pairs1}
    assert p1 == {str(o.PatientID) for _s, o in pairs2}
    assert len(p1) == 1
    assert p1.isdisjoint({str(o.PatientID) for _s, o in pairs3})
    # the UIDs too: same study, same new UID in one project, another in the other
    assert pairs1[0][1].StudyInstanceUID != pairs3[0][1].StudyInstanceUID
    path = record_mapping("alpha", a1.patients)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert NAME in path.read_text()   # the mapping back is local, and complete


def test_sequences_deeper_than_the_bound_are_removed(deid_home):
    from pydicom.dataset import Dataset

    root = Dataset()
    root.SOPClassUID, root.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.2", "1.2.3.4"
    node = root
    for _ in range(MAX_DEPTH + 3):
        child = Dataset()
        child.PatientName = "Deep^Name"
        node.ReferencedSeriesSequence = [child]   # not in the table: walked
        node = child
    tally = Tally()
    Deidentifier(project_key("deep"), Options()).deidentify(root, tally)
    assert tally.removed["sequences nested too deep"] == 1
    assert "Deep^Name" not in str(root)
