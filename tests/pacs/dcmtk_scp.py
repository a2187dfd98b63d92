"""DCMTK storescp on a free loopback port, for the send tests."""

from __future__ import annotations

import socket
import subprocess
import time

import pydicom
from orthanc_proc import DCMTK_ENV, free_port
from realparts import require_tool


def _wait_listening(scp, name: str) -> None:
    """Until ``scp.proc`` accepts connections on ``scp.port`` (10 s), else stop it and fail."""
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", scp.port), timeout=0.5).close()
            return
        except OSError:
            if time.monotonic() > deadline or scp.proc.poll() is not None:
                scp.stop()
                raise RuntimeError(f"{name} did not start") from None
            time.sleep(0.02)


class StoreSCP:
    """DCMTK storescp on a free port, writing into ``folder`` (``options``: more of its
    command-line options, e.g. ``+B`` to write each data set exactly as it came)."""

    def __init__(self, folder, options=()):
        self.folder = folder
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [require_tool("storescp"), "-aet", "DCMTKSCP", "-od", str(folder), "-uf",
             *options, str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            env=DCMTK_ENV)
        _wait_listening(self, "storescp")

    def files(self):
        return {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f)
                for f in self.folder.iterdir() if f.is_file()}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()


class QueryRetrieveSCP:
    """DCMTK dcmqrscp (find, get, move) on a free port with its database in ``folder``,
    filled by ``storescu`` with ``files``; ``max_associations``: what it serves at once
    (it rejects more, "transient, local limit exceeded")."""

    aet = "DCMQR"

    def __init__(self, folder, files, max_associations: int = 16):
        self.folder = folder
        self.port = free_port()
        db = folder / "db"
        db.mkdir(parents=True, exist_ok=True)
        config = folder / "dcmqrscp.cfg"
        config.write_text(
            f"NetworkTCPPort = {self.port}\nMaxPDUSize = 16384\n"
            f"MaxAssociations = {max_associations}\n"
            "HostTable BEGIN\nHostTable END\nVendorTable BEGIN\nVendorTable END\n"
            f"AETable BEGIN\n{self.aet} {db} RW (200, 1024mb) ANY\nAETable END\n")
        self.log = open(folder / "dcmqrscp.log", "wb")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(
            [require_tool("dcmqrscp"), "-c", str(config), str(self.port)],
            stdout=self.log, stderr=self.log, env=DCMTK_ENV)
        _wait_listening(self, "dcmqrscp")
        # all over one association: the peer may allow only one
        run = subprocess.run([require_tool("storescu"), "-aec", self.aet, "127.0.0.1",
                              str(self.port), *map(str, files)], capture_output=True,
                             text=True, timeout=60, env=DCMTK_ENV)
        if run.returncode != 0:
            self.stop()
            raise RuntimeError(f"storescu to dcmqrscp: {run.stderr}")

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.log.close()
