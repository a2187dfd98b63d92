"""Same bytes: what medview's faster transport puts on the wire is what plain pynetdicom puts
there, and what a peer stores is, byte for byte, the data set of each file sent.

medview.pacs._tuning changes how pynetdicom's PDUs reach the socket (a woken reactor, the
encoded pieces in one ``sendmsg``); these tests hold it to "same bytes, same state machine".
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading

import pydicom
import pytest
from dcmtk_scp import StoreSCP
from realparts import DATA

from medview.pacs.nodes import DimseNode, add_node
from medview.pacs.send import send

HFS = DATA / "dcm_qa_decubitus/In/HFS"  # 35 MR slices, 256², explicit VR little endian
EXPLICIT_LE, IMPLICIT_LE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


def _files():
    return sorted(p for p in HFS.rglob("*") if p.is_file())


class Relay:
    """A TCP relay on a free loopback port in front of ``port``; ``streams`` holds what each
    connection's client sent, in the order the connections came."""

    def __init__(self, port: int):
        self.upstream = port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.streams: list[bytearray] = []
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:  # closed
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self._sockets += [client, server]
            record = bytearray()
            self.streams.append(record)
            for src, dst, rec in ((client, server, record), (server, client, None)):
                t = threading.Thread(target=self._pump, args=(src, dst, rec), daemon=True)
                self._threads.append(t)
                t.start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, record: bytearray | None) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(1 << 16):
                if record is not None:
                    record += data
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()
        self._accepting.join(5)
        for t in self._threads:
            t.join(5)
        for s in self._sockets:
            s.close()

    def sent(self) -> list[bytes]:
        """What each connection that carried anything sent (the reachability probe does not)."""
        return [bytes(s) for s in self.streams if s]


def _pdus(stream: bytes) -> list[tuple[int, bytes]]:
    """(PDU type, whole PDU) of each PDU in ``stream`` (PS3.8 9.3: type, reserved, length)."""
    out, pos = [], 0
    while pos < len(stream):
        length = int.from_bytes(stream[pos + 2:pos + 6], "big")
        out.append((stream[pos], stream[pos:pos + 6 + length]))
        pos += 6 + length
    assert pos == len(stream), "the stream ends inside a PDU"
    return out


def _plain_pynetdicom(port: int, files) -> None:
    """The same C-STOREs as medview's send (same AE, contexts, PDU size, order, message ID)
    by pynetdicom as it comes: its own socket, reactor and ``PDU.encode``."""
    from pynetdicom import AE, _config

    from medview.pacs.dimse import MAX_PDU

    _config.STORE_SEND_CHUNKED_DATASET = True  # what medview sends with: from the file
    ae = AE(ae_title="MEDVIEW")
    ae.maximum_pdu_size = MAX_PDU
    ae.add_requested_context("1.2.840.10008.5.1.4.1.1.4", [EXPLICIT_LE, IMPLICIT_LE])
    assoc = ae.associate("127.0.0.1", port, ae_title="DCMTKSCP", max_pdu=MAX_PDU)
    assert assoc.is_established
    try:
        for f in files:
            assert assoc.send_c_store(f).Status == 0
    finally:
        assoc.release()
    ae.shutdown()


def test_the_bytes_on_the_wire_are_plain_pynetdicoms(tmp_path, pacs_home):
    """storescp offers 16 KiB PDUs: each 128 KiB slice goes as 8+ P-DATA-TF PDUs."""
    files = _files()
    scp = StoreSCP(tmp_path / "received")
    relay = Relay(scp.port)
    try:
        node = add_node(DimseNode("relay", "DCMTKSCP", "127.0.0.1", relay.port, timeout_s=10))
        assert send(node, [HFS], associations=1).complete
        _plain_pynetdicom(relay.port, files)
    finally:
        relay.close()
        scp.stop()
    ours, plain = relay.sent()
    pdus = _pdus(ours)
    assert sum(t == 0x04 for t, _b in pdus) >= 8 * len(files)  # P-DATA-TF
    assert max(len(b) for t, b in pdus if t == 0x04) == 16384 + 6  # storescp's limit
    assert (pdus[0][0], pdus[-1][0]) == (0x01, 0x05)  # A-ASSOCIATE-RQ ... A-RELEASE-RQ
    assert ours == plain, _difference(ours, plain)


def _difference(a: bytes, b: bytes) -> str:
    """Where two byte strings part (a short message instead of pytest's diff of megabytes)."""
    at = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
              min(len(a), len(b)))
    return f"{len(a):,} and {len(b):,} bytes, first different at byte {at:,}"


def _data_set(path) -> bytes:
    """The bytes of ``path`` after its file meta information (what C-STORE carries)."""
    from pynetdicom.dsutils import split_dataset

    _meta, offset = split_dataset(path)
    return path.read_bytes()[offset:]


def test_storescp_stores_each_data_set_byte_for_byte(tmp_path, pacs_home):
    # +B: storescp writes each data set exactly as it arrived (its own file meta before it)
    scp = StoreSCP(tmp_path / "received", ["+B"])
    try:
        node = add_node(DimseNode("dcmtk", "DCMTKSCP", "127.0.0.1", scp.port, timeout_s=10))
        report = send(node, [HFS], associations=1)
    finally:
        scp.stop()
    assert report.complete and len(report.sent) == 35
    got = {p.name: _data_set(p) for p in scp.folder.iterdir()}
    # storescp names each file by its SOP Instance UID (-uf), after the modality
    want = {f"MR.{pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID}": _data_set(f)
            for f in _files()}
    assert sorted(got) == sorted(want)
    assert [n for n in want if got[n] != want[n]] == []


@pytest.mark.parametrize("associations", [1, 4])
def test_medviews_scp_stores_each_data_set_byte_for_byte(tmp_path, pacs_home, associations):
    from medview.pacs.scp import StorageSCP

    with StorageSCP("MEDVIEW", 0, tmp_path / "store", allowed_aets=["MEDVIEW"]) as scp:
        node = add_node(DimseNode("self", "MEDVIEW", "127.0.0.1", scp.port, timeout_s=10))
        report = send(node, [HFS], associations=associations)
    assert report.complete and len(report.sent) == 35
    got = sorted(_data_set(p) for p in scp.received)
    want = sorted(_data_set(f) for f in _files())
    assert len(got) == len(want) == 35
    assert [k for k, (g, w) in enumerate(zip(got, want, strict=True)) if g != w] == []


def test_pdu_pieces_join_to_what_pynetdicom_encodes():
    """Every P-DATA-TF of a real file's C-STORE, at PDU sizes from 4 KiB to unlimited."""
    from pynetdicom.dimse_messages import C_STORE_RQ
    from pynetdicom.dimse_primitives import C_STORE
    from pynetdicom.dsutils import split_dataset
    from pynetdicom.pdu import P_DATA_TF

    from medview.pacs._tuning import pdu_pieces

    f = _files()[0]
    req = C_STORE()
    req.MessageID, req.Priority = 7, 2
    req.AffectedSOPClassUID = "1.2.840.10008.5.1.4.1.1.4"
    req.AffectedSOPInstanceUID = "1.2.3.4"
    req._dataset_path = (f, split_dataset(f)[1])
    for max_pdu in (4096, 16384, 131072, 0):
        msg = C_STORE_RQ()
        msg.primitive_to_message(req)
        n = 0
        for primitive in msg.encode_msg(1, max_pdu):
            pdu = P_DATA_TF(primitive)
            pieces = pdu_pieces(pdu)
            assert b"".join(pieces) == pdu.encode()
            assert pieces[-1] is primitive.presentation_data_value_list[0][1]  # not copied
            n += 1
        assert n >= (2 if max_pdu == 0 else f.stat().st_size // max_pdu)


def test_pynetdicoms_log_lines_still_come_when_its_logger_is_on(tmp_path, pacs_home, caplog):
    """Its logging handlers are unbound only while nothing would log what they format."""
    caplog.set_level(logging.INFO, logger="pynetdicom")
    scp = StoreSCP(tmp_path / "received")
    try:
        node = add_node(DimseNode("dcmtk", "DCMTKSCP", "127.0.0.1", scp.port, timeout_s=10))
        assert send(node, _files()[:3], associations=1).complete
    finally:
        scp.stop()
    responses = [r for r in caplog.records if "Received Store Response" in r.getMessage()]
    assert len(responses) == 3
