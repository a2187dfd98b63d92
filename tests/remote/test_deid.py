"""De-identification before upload, re-attachment after, and the result geometry check."""

from __future__ import annotations

import json

import numpy as np
import pytest

import medview
from medview.core.labelmap import LabelMap
from medview.remote.deid import audit, deidentify, reattach
from medview.remote.run import GeometryMismatchError, RemoteJob, check_results
from medview.remote.wire import bundle_bytes, decode_bundle, encode_bundle, geometry_of
from phantoms import write_ct_series


@pytest.fixture(scope="module")
def ct(tmp_path_factory):
    folder = tmp_path_factory.mktemp("ct")
    write_ct_series(folder, shape=(4, 24, 24), spacing_xyz=(0.8, 0.8, 2.0),
                    patient_name="DOE^JANE", patient_id="PID-778899", seed=5)
    return medview.load(folder)


def identifying(vol) -> list[str]:
    m = vol.metadata
    values = [m.get(k) for k in ("PatientName", "PatientID", "StudyInstanceUID",
                                 "SeriesInstanceUID", "FrameOfReferenceUID", "StudyDate",
                                 "PatientBirthDate", "AccessionNumber")]
    return [str(v) for v in values if v]


def test_only_pixels_geometry_and_pseudonyms_are_sent(ct):
    secrets = identifying(ct)
    assert "DOE^JANE" in secrets and "PID-778899" in secrets and len(secrets) >= 5
    deid = deidentify({"image": ct})
    sent = deid.metadata["image"]
    assert set(sent) <= {"Modality", "Units", "SeriesInstanceUID", "StudyInstanceUID",
                         "FrameOfReferenceUID"}
    assert sent["SeriesInstanceUID"].startswith("2.25.")
    assert deid.mapping[sent["SeriesInstanceUID"]] == ct.metadata["SeriesInstanceUID"]
    data = bundle_bytes(encode_bundle({"chain": {}}, {"image": ct}, metadata=deid.metadata))
    for s in secrets:
        assert s.encode() not in data, s


def test_results_are_reattached_to_the_original_study(ct, tmp_path):
    deid = deidentify({"image": ct})
    sent = deid.metadata["image"]
    remote_labels = LabelMap(np.zeros(ct.shape, np.uint8), ct.spacing, ct.origin, ct.direction,
                             {"SeriesInstanceUID": sent["SeriesInstanceUID"],
                              "StudyInstanceUID": sent["StudyInstanceUID"], "Threshold": 3})
    back = reattach(remote_labels, deid, {"image": ct})
    for k in ("SeriesInstanceUID", "StudyInstanceUID", "PatientID", "PatientName"):
        assert back.metadata[k] == ct.metadata[k]
    assert back.metadata["Threshold"] == 3
    log = audit(endpoint="e https://127.0.0.1:1", job_id="j1", inputs={"image": ct},
                sizes={"image": ct.array.nbytes}, path=tmp_path / "audit.log")
    (line,) = log.read_text().splitlines()
    entry = json.loads(line)
    assert entry["series_uid"] == ct.metadata["SeriesInstanceUID"]
    assert (entry["detail"]["job"], entry["bytes"]) == ("j1", ct.array.nbytes)
    assert entry["action"] == "offload" and entry["user"]
    assert entry["destination"] == "e https://127.0.0.1:1"


@pytest.mark.parametrize("change", ["flipped", "shifted", "echo"])
def test_a_result_off_the_input_grid_is_refused(ct, change):
    deid = deidentify({"image": ct})
    job = RemoteJob(None, {"image": ct}, deid, {"image": geometry_of(ct)}, 0)
    result = LabelMap.like(ct, np.zeros(ct.shape, np.uint8))
    good = decode_bundle(bundle_bytes(encode_bundle(
        {"input_geometry": {"image": geometry_of(ct)}}, {"seg": result})))
    assert set(check_results(good, job, endpoint="e")) == {"seg"}
    echo = geometry_of(ct)
    if change == "flipped":  # x axis reversed, as some tools return masks
        d = np.array(ct.direction)
        d[:, 0] *= -1
        result = LabelMap(result.array[:, :, ::-1], ct.spacing, ct.origin, d)
    elif change == "shifted":
        result = LabelMap(result.array, ct.spacing, (ct.origin[0] + 0.5, *ct.origin[1:]),
                          ct.direction)
    else:
        echo = {**echo, "spacing": [1.0, 1.0, 1.0]}
    bad = decode_bundle(bundle_bytes(encode_bundle({"input_geometry": {"image": echo}},
                                                   {"seg": result})))
    with pytest.raises(GeometryMismatchError, match="grid"):
        check_results(bad, job, endpoint="e")
