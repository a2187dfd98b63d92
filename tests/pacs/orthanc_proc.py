"""A real Orthanc (with its DICOMweb plugin) on free loopback ports, for tests and benchmarks.

Authentication on, remote access off, its own storage in a temporary folder. Stop it with
:meth:`Orthanc.stop` (SIGTERM, then wait: Orthanc takes 3-5 s to exit); it stops only the
process it started.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

ORTHANC = "/usr/sbin/Orthanc"
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
USER, PASSWORD = "medview", "s3cret-test"
# DCMTK leaves Nagle's algorithm on unless told: ~45 ms per instance on loopback
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# where medview's storage SCP listens for C-MOVE in the tests: the session's Orthanc knows
# the AE title MEDVIEW at this port (here, not in conftest.py: every conftest imports as
# "conftest" and the last one imported wins)
MOVE_PORT = free_port()


def available() -> bool:
    return Path(ORTHANC).exists() and Path(DICOMWEB_PLUGIN).exists()


class Orthanc:
    """An Orthanc process; ``modalities`` maps AE titles it knows to (host, port).

    ``host`` and ``command`` (a function of the command line) run it elsewhere, e.g. in a
    benchmark's network namespace (``benchmarks/_netns.py``); remote access is then on."""

    aet = "ORTHANC"

    def __init__(self, folder: Path, modalities: dict[str, tuple[str, int]] | None = None, *,
                 host: str = "127.0.0.1", command=None):
        self.folder = Path(folder)
        self.modalities = modalities or {}
        self.host = host
        self.command = command or (lambda cmd: cmd)
        self.http_port = free_port()
        self.dicom_port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def config(self) -> dict:
        return {
            "Name": "medview-test",
            "StorageDirectory": str(self.folder / "storage"),
            "IndexDirectory": str(self.folder / "index"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "RemoteAccessAllowed": self.host != "127.0.0.1",
            "AuthenticationEnabled": True,
            "RegisteredUsers": {USER: PASSWORD},
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomCheckCalledAet": True,
            "DicomModalities": {aet: [aet, host, port]
                                for aet, (host, port) in self.modalities.items()},
            "Plugins": [DICOMWEB_PLUGIN],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
            "StorageCompression": False,
            "LimitFindResults": 0,
            "LimitFindInstances": 0,
            "ConcurrentJobs": 2,
            "HttpVerbose": False,
        }

    def start(self, timeout: float = 20.0) -> Orthanc:
        """Start it (on the same ports and storage when restarted) and wait until it answers."""
        self.folder.mkdir(parents=True, exist_ok=True)
        cfg = self.folder / "orthanc.json"
        cfg.write_text(json.dumps(self.config()))
        log = open(self.folder / "orthanc.log", "ab")  # noqa: SIM115 - the process keeps it
        self.proc = subprocess.Popen(self.command([ORTHANC, str(cfg)]), stdout=log, stderr=log,
                                     stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with {self.proc.returncode}; see "
                                   f"{self.folder / 'orthanc.log'}")
            try:
                r = requests.get(f"{self.url}/system", auth=(USER, PASSWORD), timeout=1)
                if r.status_code == 200:
                    return self
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("Orthanc did not answer within {timeout} s")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """SIGKILL: a PACS that dies mid-transfer."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def upload(self, files) -> int:
        """POST files to /instances; the number stored."""
        n = 0
        with requests.Session() as s:
            s.auth = (USER, PASSWORD)
            for f in files:
                r = s.post(f"{self.url}/instances", data=Path(f).read_bytes(), timeout=30)
                r.raise_for_status()
                n += 1
        return n

    def rest(self, path: str):
        r = requests.get(f"{self.url}{path}", auth=(USER, PASSWORD), timeout=30)
        r.raise_for_status()
        return r.json()

    def delete_all(self) -> None:
        with requests.Session() as s:
            s.auth = (USER, PASSWORD)
            for p in s.get(f"{self.url}/patients", timeout=30).json():
                s.delete(f"{self.url}/patients/{p}", timeout=30).raise_for_status()

    def wipe(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def orthanc_with_test_series(folder: Path):
    """A started Orthanc (state under ``folder``) that knows medview's C-MOVE destination and
    holds the KiTS CT and the decubitus HFS MR of the shared data; stopped on exit. The tests
    fail (never skip under CI) without Orthanc or the data."""
    from realparts import DATA, require

    require(available(), "Orthanc with its DICOMweb plugin (apt-get install orthanc "
                         "orthanc-dicomweb)")
    require(DATA.is_dir(), f"real DICOM test data at {DATA}")
    server = Orthanc(folder, {"MEDVIEW": ("127.0.0.1", MOVE_PORT)}).start()
    try:
        server.upload(sorted((DATA / "kits_dupe_positions").glob("*.dcm")))
        server.upload(sorted((DATA / "dcm_qa_decubitus/In/HFS").rglob("*.dcm")))
        yield server
    finally:
        server.stop()
