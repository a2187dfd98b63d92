"""A series goes out with the annotations and key images saved on it: `medview pacs send` of
a catalog series stores its SR and KOS on a real DCMTK storescp, and a backup selects them."""

from __future__ import annotations

import pydicom
from test_send import CT3, storescp  # noqa: F401 - the fixture

from medview.cli import main
from medview.core.annotations import make_annotation
from medview.dicom.catalog.db import Catalog
from medview.dicom.documents.store import save_annotations, save_key_images
from medview.dicom.series.loading import load
from medview.pacs.backup import select_instances

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
KEY_OBJECT_SELECTION = "1.2.840.10008.5.1.4.1.1.88.59"


def test_send_and_backup_take_the_documents_of_a_series(storescp):  # noqa: F811
    with Catalog() as catalog:
        catalog.index(CT3)
        [series] = catalog.series()
        vol = load(series.uid, catalog=catalog)
        ann = make_annotation("distance", [vol.index_to_lps((10, 10, 1)),
                                           vol.index_to_lps((90, 40, 1))],
                              volume=vol, slice_index=1)
        sr = save_annotations(catalog, vol, [ann])
        ko = save_key_images(catalog, vol, [1])
        selected, _left_out = select_instances(catalog, [series.study_uid])
        (items,) = selected.values()
        assert {i.path for i in items} >= {sr, ko} and len(items) == 5
    assert main(["pacs", "send", "dcmtk", series.uid]) == 0
    got = storescp.files()
    assert len(got) == 5
    classes = sorted(str(ds.SOPClassUID) for ds in got.values())
    assert classes.count(COMPREHENSIVE_3D_SR) == 1 and classes.count(KEY_OBJECT_SELECTION) == 1
    sent_sr = next(ds for ds in got.values() if ds.SOPClassUID == COMPREHENSIVE_3D_SR)
    assert sent_sr == pydicom.dcmread(sr)
