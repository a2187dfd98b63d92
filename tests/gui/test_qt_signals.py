"""Guards against the PySide6 6.12.0 bug that aborts Python after a few thousand emits.

PySide6 6.12.0 drops a reference to ``True`` on every ``Signal.emit()``; after enough emits
Python aborts with ``Fatal Python error: bool_dealloc`` (shared/ENVIRONMENT.md). pyqtgraph
emits on every ``setImage``, so a few seconds of scrolling would crash the workstation. The
emits run in a child process so that a crash fails this test instead of killing pytest.
"""

from __future__ import annotations

import subprocess
import sys

import PySide6

EMITS = 100_000

_CHILD = f"""
import gc
from PySide6.QtCore import QCoreApplication, QObject, Signal


class Source(QObject):
    bare = Signal()
    flag = Signal(bool)
    thing = Signal(object)


app = QCoreApplication([])
source = Source()
seen = [0, 0, 0]


def on_bare():
    seen[0] += 1


def on_flag(value):
    seen[1] += value is True


def on_thing(value):
    seen[2] += 1


source.bare.connect(on_bare)
source.flag.connect(on_flag)
source.thing.connect(on_thing)
for i in range({EMITS}):
    source.bare.emit()
    source.flag.emit(True)
    source.thing.emit(i)
gc.collect()
assert seen == [{EMITS}] * 3, seen
print("survived", seen)
"""


def test_signal_emitted_100000_times_does_not_crash_python():
    proc = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, (
        f"emitting a Qt signal {EMITS:,} times killed Python (exit {proc.returncode}) with "
        f"PySide6 {PySide6.__version__}; 6.12.0 has this bug, pin PySide6-Essentials<6.12:\n"
        f"{proc.stderr[-2000:]}"
    )
    assert "survived" in proc.stdout
