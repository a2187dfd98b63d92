"""``medview share`` as a user runs it (a real subprocess): a catalog study to a folder with a
DICOMDIR, a folder to a ZIP with options, and to a real Orthanc over DICOM and DICOMweb."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pydicom
import pytest
import requests
from privacy_set import PLANTED, grep_files

from medview.dicom.scan.dicomdir import referenced_files

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "pacs"))
from orthanc_proc import PASSWORD, USER, Orthanc, available


def medview(*args, env, stdin: str | None = None):
    return subprocess.run([sys.executable, "-m", "medview.cli", *map(str, args)], env=env,
                          capture_output=True, text=True, timeout=300, input=stdin)


@pytest.fixture
def env(tmp_path):
    return dict(os.environ, MEDVIEW_CONFIG_DIR=str(tmp_path / "cfg"),
                MEDVIEW_DATA_DIR=str(tmp_path / "data"), MEDVIEW_DB=str(tmp_path / "cat.db"),
                PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory):
    from realparts import require

    require(available(), "Orthanc with its DICOMweb plugin")
    server = Orthanc(tmp_path_factory.mktemp("orthanc-share")).start()
    yield server
    server.stop()


def _audit(env) -> list[dict]:
    path = Path(env["MEDVIEW_DATA_DIR"]) / "audit.log"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_share_a_catalog_study_to_a_folder_with_a_dicomdir(env, privacy_files, tmp_path):
    folder = privacy_files[0].parent
    assert medview("index", folder, env=env).returncode == 0
    study = str(pydicom.dcmread(privacy_files[0]).StudyInstanceUID)
    out = tmp_path / "shared"
    proc = medview("share", study, "--profile", "basic", "--project", "trial-1", "--to", out,
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert "Removed:" in proc.stdout and "SHARE-REPORT.txt" in proc.stdout
    files = referenced_files(out / "DICOMDIR")
    # the study holds the CT, the US made from it; the MR is another study
    assert len(files) == sum(str(pydicom.dcmread(p).StudyInstanceUID) == study
                             for p in privacy_files)
    assert grep_files(p for p in out.rglob("*") if p.is_file()) == []
    lines = _audit(env)
    assert {x["action"] for x in lines} == {"share"} and lines[0]["profile"] == "basic"
    assert lines[0]["destination"] == str(out)
    # the same target again: refused, exit status 1, nothing replaced
    again = medview("share", study, "--project", "trial-1", "--to", out, env=env)
    assert again.returncode == 1 and "already exists" in again.stderr


def test_share_to_a_zip_with_options(env, privacy_files, tmp_path):
    out = tmp_path / "share.zip"
    proc = medview("share", privacy_files[0].parent, "--project", "trial-2",
                   "--retain-dates-modified", "--retain-patient-characteristics",
                   "--clean-descriptors", "--retain-device-identity", "--to", out, env=env)
    assert proc.returncode == 0, proc.stderr
    with zipfile.ZipFile(out) as z:
        report = json.loads(z.read("SHARE-REPORT.json"))
        blobs = b"".join(z.read(n) for n in z.namelist()).lower()
    assert report["profile"] == ("basic+retain_dates_modified+retain_patient_characteristics"
                                 "+clean_descriptors+retain_device_identity")
    assert report["shifted"]["Study Date"] == len(privacy_files)
    assert report["kept"]["Device Serial Number"] == len(privacy_files)
    for planted in (PLANTED["PatientName"], PLANTED["PatientID"], "zyxwvut", "quinbert",
                    PLANTED["StudyDate"], PLANTED["InstitutionName"]):
        assert planted.lower().encode() not in blobs
    assert PLANTED["DeviceSerialNumber"].lower().encode() in blobs   # the option keeps it


@pytest.mark.e2e
def test_share_to_orthanc_over_dicom_and_dicomweb(env, privacy_files, orthanc):
    add = medview("pacs", "add", "orth", f"{orthanc.aet}@127.0.0.1:{orthanc.dicom_port}",
                  env=env)
    assert add.returncode == 0, add.stderr
    proc = medview("share", privacy_files[0].parent, "--project", "trial-3", "--to", "orth",
                   env=env)
    assert proc.returncode == 0, proc.stderr
    assert f"{len(privacy_files)} of {len(privacy_files)} instance(s) stored" in proc.stdout
    ids = orthanc.rest("/instances")
    assert len(ids) == len(privacy_files)
    with requests.Session() as s:
        s.auth = (USER, PASSWORD)
        blobs = [s.get(f"{orthanc.url}/instances/{i}/file", timeout=30).content for i in ids]
    for blob in blobs:
        low = blob.lower()
        assert b"zyxwvut" not in low and PLANTED["PatientID"].lower().encode() not in low
    lines = _audit(env)
    assert lines and all(x["destination"].startswith("orth") for x in lines), lines
    # one line per series for this disclosure: the share's (source series, profile), not a
    # second "send" line for the same data
    assert {x["action"] for x in lines} == {"share"}
    assert len(lines) == len({x["series_uid"] for x in lines})
    # the same share again over DICOMweb (STOW-RS): the same UIDs, so nothing new in Orthanc
    web = medview("pacs", "add", "orthweb", orthanc.dicomweb, "--user", USER, env=env,
                  stdin=PASSWORD + "\n")
    assert web.returncode == 0, web.stderr
    proc = medview("share", privacy_files[0].parent, "--project", "trial-3", "--to",
                   "orthweb", env=env)
    assert proc.returncode == 0, proc.stderr
    assert "STOW-RS" in proc.stdout
    assert sorted(orthanc.rest("/instances")) == sorted(ids)
