"""Query Orthanc (C-FIND and QIDO-RS): the tree, counts, wildcards, dates, what is local."""

from __future__ import annotations

import json
import subprocess

import pytest
from orthanc_proc import DCMTK_ENV
from realparts import DATA, require_tool

from medview.cli import main
from medview.dicom.catalog.db import Catalog
from medview.pacs.query import Query, find, list_instances

HFS = "dcm_qa_decubitus/In/HFS"


@pytest.fixture(params=["dimse", "web"])
def node(request, dimse_node, web_node):
    return dimse_node if request.param == "dimse" else web_node


def _studies(patients):
    return {st.uid: (p, st) for p in patients for st in p.studies}


def test_everything_with_series_and_counts(node):
    patients = find(node)
    assert sorted(p.name for p in patients) == ["HFS", "Lymphoma"]
    by_name = {p.name: p for p in patients}
    [mr] = by_name["HFS"].studies
    assert (by_name["HFS"].patient_id, by_name["HFS"].birth_date) == ("crlab", "19700606")
    assert (mr.date, mr.modalities, mr.n_series, mr.instances) == ("20220407", ("MR",), 1, 35)
    assert mr.description == "Rorden^Rorden_Prisma"
    [series] = mr.series
    assert (series.modality, series.series_number, series.instances) == ("MR", 3, 35)
    [ct] = by_name["Lymphoma"].studies
    assert sum(s.instances for s in ct.series) == 11 == ct.instances


@pytest.mark.parametrize("query, names", [
    (Query(patient_name="HF*"), ["HFS"]),
    (Query(patient_name="H?S"), ["HFS"]),
    (Query(patient_name="*ympho*"), ["Lymphoma"]),
    (Query(patient_id="crlab"), ["HFS"]),
    (Query(modality="CT"), ["Lymphoma"]),
    (Query(study_date="20220101-20221231"), ["HFS"]),
    (Query(study_date="20230101-"), []),
    (Query(birth_date="19700606"), ["HFS"]),
    (Query(study_description="Rorden*"), ["HFS"]),
])
def test_matching_keys_and_wildcards(node, query, names):
    assert sorted(p.name for p in find(node, query, level="study")) == names


def test_study_level_leaves_series_empty(node):
    patients = find(node, Query(patient_id="crlab"), level="study")
    assert [st.series for p in patients for st in p.studies] == [[]]


def test_local_catalog_marks_what_is_already_here(node, tmp_path):
    with Catalog(tmp_path / "c.sqlite") as catalog:
        catalog.index(DATA / HFS)
        patients = find(node, catalog=catalog)
    by_name = {p.name: p for p in patients}
    mr = by_name["HFS"].studies[0]
    assert (mr.in_catalog, mr.series[0].in_catalog, mr.series[0].local_instances) == \
        ("all", "all", 35)
    ct = by_name["Lymphoma"].studies[0]
    assert ct.in_catalog == "none" and all(s.in_catalog == "none" for s in ct.series)


def test_instances_of_a_series(node):
    [p] = find(node, Query(patient_id="crlab"))
    series = p.studies[0].series[0]
    uids = list_instances(node, p.studies[0].uid, series.uid)
    assert len(uids) == 35
    assert set(uids.values()) == {(series.uid, "1.2.840.10008.5.1.4.1.1.4")}  # MR Image


def test_same_studies_as_dcmtk_findscu(dimse_node, orthanc, tmp_path):
    findscu = require_tool("findscu")
    out = subprocess.run(
        [findscu, "-S", "-aet", "FINDSCU", "-aec", orthanc.aet, "-k", "QueryRetrieveLevel=STUDY",
         "-k", "StudyInstanceUID", "-X", "-od", str(tmp_path), "127.0.0.1",
         str(orthanc.dicom_port)], capture_output=True, text=True, timeout=60,
        env=DCMTK_ENV)
    assert out.returncode == 0, out.stderr
    import pydicom

    theirs = {pydicom.dcmread(f).StudyInstanceUID for f in tmp_path.glob("rsp*.dcm")}
    assert len(theirs) == 2
    assert set(_studies(find(dimse_node, level="study"))) == theirs


def test_cli_find_json_and_text(dimse_node, capsys):
    assert main(["pacs", "find", "orthanc", "--patient-name", "HF*", "--json"]) == 0
    [patient] = json.loads(capsys.readouterr().out)
    assert patient["studies"][0]["series"][0]["instances"] == 35
    assert main(["pacs", "find", "orthanc", "--modality", "CT", "--level", "study"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1 study of 1 patient(s) on orthanc") and "Lymphoma" in out
    assert main(["pacs", "find", "orthanc", "--date", "2022"]) == 1
    assert "YYYYMMDD" in capsys.readouterr().err
