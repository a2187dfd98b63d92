"""A query/retrieve peer that retrieves whole series and studies only (many archives do):
pynetdicom's SCP over real files, answering C-FIND at every level and refusing an
IMAGE-level C-GET with 0xA900 (identifier does not match SOP class)."""

from __future__ import annotations

import pydicom
from orthanc_proc import free_port

STUDY_FIND = "1.2.840.10008.5.1.4.1.2.2.1"
STUDY_GET = "1.2.840.10008.5.1.4.1.2.2.3"


class SeriesOnlySCP:
    """Serves ``files`` on a free loopback port as AE title ``aet``; ``get_levels`` lists
    the Query/Retrieve level of every C-GET it was asked."""

    aet = "SERIESONLY"

    def __init__(self, files):
        from pynetdicom import AE, evt

        self.datasets = [pydicom.dcmread(f) for f in files]
        self.get_levels: list[str] = []
        ae = AE(self.aet)
        ae.add_supported_context(STUDY_FIND)
        ae.add_supported_context(STUDY_GET)
        for cls in sorted({ds.SOPClassUID for ds in self.datasets}):
            ae.add_supported_context(cls, scu_role=True, scp_role=True)
        self.port = free_port()
        self.server = ae.start_server(("127.0.0.1", self.port), block=False,
                                      evt_handlers=[(evt.EVT_C_FIND, self._find),
                                                    (evt.EVT_C_GET, self._get)])

    def _matches(self, identifier):
        out = []
        for ds in self.datasets:
            if any(identifier.get(k) and str(identifier.get(k)) != str(ds.get(k))
                   for k in ("StudyInstanceUID", "SeriesInstanceUID")):
                continue
            out.append(ds)
        return out

    def _find(self, event):
        identifier = event.identifier
        for ds in self._matches(identifier):
            answer = pydicom.Dataset()
            answer.QueryRetrieveLevel = identifier.QueryRetrieveLevel
            for k in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID",
                      "SOPClassUID"):
                if k in identifier:
                    setattr(answer, k, ds.get(k))
            yield 0xFF00, answer
        yield 0x0000, None

    def _get(self, event):
        identifier = event.identifier
        self.get_levels.append(str(identifier.QueryRetrieveLevel))
        if identifier.QueryRetrieveLevel == "IMAGE":
            yield 1
            yield 0xA900, None  # this archive retrieves whole series and studies only
            return
        matches = self._matches(identifier)
        yield len(matches)
        for ds in matches:
            yield 0xFF00, ds

    def stop(self) -> None:
        self.server.shutdown()
