"""A measurement report as another tool writes it (highdicom directly), for the tests that
read other tools' reports (the store headless, the window on screen)."""

from __future__ import annotations

import numpy as np


def foreign_report(volume, path, corners, z: int) -> np.ndarray:
    """Write to ``path`` a TID 1500 report with one planar ROI: the closed polygon through voxel
    ``corners`` ``[(x, y), ...]`` on slice ``z`` of ``volume``, with an area of 321 mm²; returns
    the polygon's points in LPS (without the closing point)."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    from medview.dicom.export._common import quiet_highdicom

    images = [pydicom.dcmread(f, stop_before_pixels=True)
              for f in sorted(set(volume.metadata["source_files"]))]
    for ds in images:
        del ds.SpecificCharacterSet  # empty in these files: highdicom refuses it
    outline = np.array([volume.index_to_lps((x, y, z)) for x, y in (*corners, corners[0])])
    group = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=hd.UID(), identifier="their ROI"),
        referenced_region=hd.sr.ImageRegion3D(
            graphic_type=hd.sr.GraphicTypeValues3D.POLYGON, graphic_data=outline,
            frame_of_reference_uid=images[0].FrameOfReferenceUID),
        measurements=[hd.sr.Measurement(name=codes.SCT.Area, value=321.0,
                                        unit=codes.UCUM.SquareMillimeter)])
    observer = hd.sr.ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=hd.sr.DeviceObserverIdentifyingAttributes(uid=hd.UID()))
    report = hd.sr.MeasurementReport(
        observation_context=hd.sr.ObservationContext(observer_device_context=observer),
        procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[group])
    with quiet_highdicom():
        sr = hd.sr.Comprehensive3DSR(
            evidence=images, content=report, series_number=77, series_instance_uid=hd.UID(),
            sop_instance_uid=hd.UID(), instance_number=1, manufacturer="other tool")
    sr.save_as(path)
    return outline[:-1]
