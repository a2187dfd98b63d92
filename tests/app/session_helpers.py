"""A Session on a private catalog whose events are delivered from a queue the test drains
(the stand-in for the GUI thread), and the real series it works on.

Not a conftest.py: the test modules import the fixture ``session_parts`` from here
(``session_fixture``).
"""

from __future__ import annotations

import shutil

import pytest

from medview.app.session import Session
from medview.app.tasks import DispatchQueue, JobRunner

MR = "dcm_qa_decubitus/In/HFS/3_t1_fl2d_sag"
MR_OTHER = "dcm_qa_decubitus/In/HFDL"


class Recorder:
    """Every event of a Session, in order, as ``(name, args)``."""

    def __init__(self, session: Session):
        self.events: list[tuple[str, tuple]] = []
        from psygnal import Signal

        self.signals = sorted(name for cls in type(session).__mro__
                              for name, value in vars(cls).items() if isinstance(value, Signal))
        for name in self.signals:
            getattr(session, name).connect(lambda *args, n=name: self.events.append((n, args)))

    def names(self) -> list[str]:
        return [n for n, _ in self.events]

    def of(self, name: str) -> list[tuple]:
        return [a for n, a in self.events if n == name]


@pytest.fixture(name="session_parts")
def session_fixture(tmp_path, monkeypatch):
    """``(session, queue, recorder)``: a Session on a private catalog and config, its events
    queued for the test to drain, and a :class:`Recorder` of them."""
    monkeypatch.setenv("MEDVIEW_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDVIEW_DATA_DIR", str(tmp_path / "data"))
    queue = DispatchQueue()
    session = Session(tmp_path / "catalog.sqlite", runner=JobRunner(queue),
                      cache_cap_bytes=1 << 30)
    recorder = Recorder(session)
    yield session, queue, recorder
    assert session.close(timeout=30)
    queue.drain()


def copy_series(data_dir, folder: str, target):
    """A copy of a real series' files (the test may add to it)."""
    shutil.copytree(data_dir / folder, target)
    return target


def import_and_wait(session, queue, path):
    job = session.import_paths(path)
    queue.run_until(lambda: job.is_done, timeout=120)
    return job
