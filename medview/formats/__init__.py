"""Non-DICOM files: NIfTI, NRRD, MHA; later PNG and CSV."""
