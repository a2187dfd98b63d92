"""medview's storage SCP: C-STORE from allowed AE titles into the store, indexed.

Used by ``medview pacs listen`` and as the destination of C-MOVE. Files go to paths built
from hashes (:mod:`medview.pacs.storage`); the files of each association are indexed into the
catalog when it ends — released, aborted or dropped — so what arrived before a sender went
away is kept and listed.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

from medview.pacs.nodes import check_ae_title

__all__ = ["StorageSCP"]

log = logging.getLogger(__name__)

# accepted transfer syntaxes: what pydicom (with medview's decoders) can read
TRANSFER_SYNTAXES = [
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.1.99",  # deflated explicit VR little endian
    "1.2.840.10008.1.2.2",  # explicit VR big endian (retired, still found)
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.51",  # JPEG extended
    "1.2.840.10008.1.2.4.57",  # JPEG lossless
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS near-lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.5",  # RLE lossless
]


#: the largest PDU the listener accepts. Smaller than the SCU's (medview.pacs.dimse.MAX_PDU):
#: a PACS sending C-MOVE sub-operations streams 16 KiB PDUs while we read the previous ones,
#: and brought a 300-slice 512² CT ~25 % faster than with 4 MiB ones (Orthanc 1.10, three
#: interleaved runs of benchmarks/pacs.py's C-MOVE); it is also DCMTK's default.
SCP_MAX_PDU = 16 * 1024


def storage_classes() -> list[str]:
    """Storage SOP Class UIDs medview accepts (pynetdicom's storage list, at most 120 so
    verification and Q/R contexts fit beside them in one association)."""
    from pynetdicom import StoragePresentationContexts

    return [cx.abstract_syntax for cx in StoragePresentationContexts][:120]


class StorageSCP:
    """A storage SCP running in background threads.

    Parameters
    ----------
    ae_title : str
        Our AE title (senders must call it).
    port : int
        TCP port; 0 = a free one (read :attr:`port` after :meth:`start`).
    root : path
        The store (see :func:`medview.pacs.storage.default_store`).
    allowed_aets : sequence of str
        Calling AE titles accepted; others are rejected at association ("calling AE title
        not recognised"). Empty = refuse everyone.
    host : str
        Address to listen on.
    catalog : medview.dicom.catalog.db.Catalog, optional
        Files of each association are indexed into it when the association ends.
    on_instance : callable, optional
        ``on_instance(path, (study_uid, series_uid, sop_uid))`` for each stored instance, in
        the association's thread (the writer's with ``write_behind``).
    write_behind : bool
        Answer each C-STORE at once and write it in another thread
        (:class:`~medview.pacs.storage.RawWriter`): for medview's own C-MOVE retrieves,
        which report what could not be written as missing. Never for a listener others
        send to: they may delete their copy on our success.
    """

    def __init__(self, ae_title: str, port: int, root: str | os.PathLike, *,
                 allowed_aets: Sequence[str], host: str = "127.0.0.1", catalog=None,
                 on_instance: Callable[[Path, tuple], None] | None = None,
                 write_behind: bool = False):
        self.ae_title = check_ae_title(ae_title, "our AE title")
        self.host = host
        self.port = int(port)
        self.root = Path(root)
        self.allowed = [check_ae_title(a, "allowed AE title") for a in allowed_aets]
        self.catalog = catalog
        self.on_instance = on_instance
        self.received: list[Path] = []
        self.failures: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._pending: dict[int, list[Path]] = {}
        self._server = None
        self._writer = None
        self.write_behind = write_behind

    # -- events ---------------------------------------------------------------------------

    def _on_store(self, event) -> int:
        from medview.pacs.storage import write_raw

        if self._writer is not None:  # its File Meta Information made in the writer's thread
            from functools import partial

            from pynetdicom.dsutils import create_file_meta

            req = event.request
            self._writer.put(partial(create_file_meta, sop_class_uid=req.AffectedSOPClassUID,
                                     sop_instance_uid=req.AffectedSOPInstanceUID,
                                     transfer_syntax=event.context.transfer_syntax),
                             req.DataSet.getvalue())
            return 0x0000
        try:
            path, uids = write_raw(self.root, event.file_meta, event.request.DataSet.getvalue())
        except Exception as exc:  # a dataset we cannot parse or a full disk: tell the sender
            log.warning("C-STORE from %s refused: %s", event.assoc.requestor.ae_title, exc)
            with self._lock:
                self.failures.append((str(event.request.AffectedSOPInstanceUID), str(exc)))
            return 0xA700 if isinstance(exc, OSError) else 0xC000
        self._stored(path, uids, id(event.assoc))
        return 0x0000

    def _stored(self, path: Path, uids: tuple, key: int = 0) -> None:
        with self._lock:
            self.received.append(path)
            self._pending.setdefault(key, []).append(path)
        if self.on_instance is not None:
            self.on_instance(path, uids)

    def _on_open(self, event) -> None:
        from medview.pacs._tuning import speed_up

        speed_up(event.assoc)

    def _on_close(self, event) -> None:
        with self._lock:
            paths = self._pending.pop(id(event.assoc), [])
        if paths and self.catalog is not None:
            self.catalog.index(paths, workers=1)

    # -- running --------------------------------------------------------------------------

    def start(self) -> StorageSCP:
        """Listen in background threads; returns self.

        Raises
        ------
        OSError
            When the port is taken (the message names it).
        """
        from pynetdicom import AE, evt

        from medview.pacs.dimse import quiet_pynetdicom

        quiet_pynetdicom()
        ae = AE(ae_title=self.ae_title)
        ae.require_calling_aet = self.allowed or ["\x00refuse-all"]
        ae.maximum_pdu_size = SCP_MAX_PDU
        ae.network_timeout = 60
        ae.dimse_timeout = 60
        ae.acse_timeout = 30
        ae.add_supported_context("1.2.840.10008.1.1")  # verification
        for uid in storage_classes():
            ae.add_supported_context(uid, TRANSFER_SYNTAXES)
        handlers = [(evt.EVT_C_STORE, self._on_store), (evt.EVT_CONN_CLOSE, self._on_close),
                    (evt.EVT_CONN_OPEN, self._on_open)]
        if self.write_behind:
            from medview.pacs.storage import RawWriter

            self._writer = RawWriter(self.root, self._stored)
        try:
            self._server = ae.start_server((self.host, self.port), block=False,
                                           evt_handlers=handlers)
        except OSError as exc:
            raise OSError(f"storage SCP: cannot listen on {self.host}:{self.port} "
                          f"({exc.strerror or exc})") from None
        self.port = self._server.server_address[1]
        return self

    def stop(self) -> None:
        """Stop listening, end open associations, index what they brought."""
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        if self._writer is not None:
            self._writer.close()
            self.failures.extend(self._writer.errors)
            self._writer = None
        with self._lock:
            leftovers = [p for paths in self._pending.values() for p in paths]
            self._pending.clear()
        if leftovers and self.catalog is not None:
            self.catalog.index(leftovers, workers=1)

    def __enter__(self) -> StorageSCP:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
