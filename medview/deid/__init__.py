"""De-identified sharing: DICOM PS3.15 Annex E with its options, burned-in text, the share.

- :mod:`medview.deid.profile` — Table E.1-1 (generated from the standard, edition
  :data:`medview.deid.profile.EDITION`) resolved for the chosen :class:`Options`;
- :mod:`medview.deid.keys` — per-project keys: UIDs, pseudonyms and date offsets by HMAC; the
  local pseudonym → original mapping;
- :mod:`medview.deid.engine` — de-identify one dataset;
- :mod:`medview.deid.burned_in` — images that may carry text in their pixels, OCR, masking;
- :mod:`medview.deid.share` — a de-identified copy of studies as a folder with a DICOMDIR, a
  ZIP, or files to send, with its report and audit lines.

No Qt; imports pydicom lazily where it can.
"""

from medview.deid.profile import EDITION, Options

__all__ = ["EDITION", "Options"]
