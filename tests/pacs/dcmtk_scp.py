"""DCMTK storescp on a free loopback port, for the send tests."""

from __future__ import annotations

import socket
import subprocess
import time

import pydicom
from orthanc_proc import DCMTK_ENV, free_port
from realparts import require_tool


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
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("storescp did not start") from None
                time.sleep(0.02)

    def files(self):
        return {pydicom.dcmread(f).SOPInstanceUID: pydicom.dcmread(f)
                for f in self.folder.iterdir() if f.is_file()}

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
