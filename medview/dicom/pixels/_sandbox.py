"""A decoder process: codecs that can crash the process decode in a child, not in medview.

GDCM aborts the process (SIGABRT, a C++ exception nobody catches) on some inconsistent files —
a JPEG 2000 slice labelled YBR_FULL_422 is enough — and GDCM and pyjpegls decoding in one
process double-free. So medview never decodes with GDCM in its own process: when the
in-process plugins (pylibjpeg, pillow, pyjpegls, pydicom's RLE) cannot decode a file, the file
is handed to one small child process that decodes with GDCM only. If the child dies (abort,
segfault) or exceeds its time limit, that file fails with a clear reason, the child is
restarted for the next file, and the caller treats the slice as missing.

The child is started on first use and reused (a Python start plus pydicom's import costs
about half a second); it ends with its parent (:func:`medview.children.die_with_parent`).
Nothing is unpickled from it: it answers with a small JSON header and the raw frame bytes,
received with a length cap from the header the parent already checked.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading

import numpy as np

from medview.dicom.errors import PixelDataError

__all__ = ["SANDBOX_PLUGINS", "decode_in_sandbox", "shutdown"]

#: pydicom decoder plugins that only ever run in the child process
SANDBOX_PLUGINS = frozenset({"gdcm"})
#: seconds one frame may take before the child is killed (a 512² J2K frame takes ~20 ms)
FRAME_TIMEOUT_S = 30.0
#: seconds the child may take to start and read the file
START_TIMEOUT_S = 60.0
_META_MAX = 64 * 1024

_lock = threading.Lock()
_worker: _Worker | None = None


class _Refused(Exception):
    """The child could not decode the file and said so (it stays usable)."""


class _Worker:
    """One child process and the connection to it.

    The child is ``python -m medview.dicom.pixels._sandbox``, connected back over a local socket
    (a named pipe on Windows) with a random key: a multiprocessing "spawn" child would run
    the caller's ``__main__`` script again, which a user's unguarded script must not suffer.
    A frozen application (PyInstaller) cannot run ``-m``; there the multiprocessing child is
    used (the bundle's entry point guards its ``__main__`` and calls ``freeze_support``).
    """

    def __init__(self):
        if getattr(sys, "frozen", False):
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")
            self.conn, child = ctx.Pipe()
            self.proc = ctx.Process(target=_serve, args=(child, os.getpid()), daemon=True,
                                    name="medview-decoder")
            self.proc.start()
            child.close()
            self._popen = None
            return
        self.proc = None
        self._popen, self.conn = _start_child()

    def alive(self) -> bool:
        if self._popen is not None:
            return self._popen.poll() is None
        return self.proc.is_alive()

    def _exitcode(self) -> int | None:
        if self._popen is not None:
            try:
                return self._popen.wait(5)
            except subprocess.TimeoutExpired:
                return None
        self.proc.join(5)
        return self.proc.exitcode

    def stop(self) -> None:
        if self.alive():
            (self._popen or self.proc).kill()
        self._exitcode()
        self.conn.close()

    def died(self) -> str:
        """Why the child is gone, for a message (after it ended)."""
        code = self._exitcode()
        if code is not None and code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the decoder process was killed by {name}"
        return f"the decoder process ended (exit status {code})"


def _start_child():
    """Start ``python -m medview.dicom.pixels._sandbox`` and accept its connection."""
    from multiprocessing.connection import Listener

    import medview

    root = os.path.dirname(os.path.dirname(os.path.abspath(medview.__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    authkey = os.urandom(32)
    with Listener(authkey=authkey) as listener:
        popen = subprocess.Popen([sys.executable, "-m", "medview.dicom.pixels._sandbox"],
                                 stdin=subprocess.PIPE, env=env)
        hello = {"address": listener.address, "authkey": authkey.hex(), "parent": os.getpid()}
        try:
            popen.stdin.write(json.dumps(hello).encode())  # type: ignore[union-attr]
            popen.stdin.close()  # type: ignore[union-attr]
        except OSError:
            pass  # the child died at once: accept() below times out and says so
        accepted: list = []

        def accept() -> None:
            # a closed listener or a wrong key: no child (reported below)
            with contextlib.suppress(Exception):
                accepted.append(listener.accept())

        t = threading.Thread(target=accept, daemon=True, name="medview-decoder-accept")
        t.start()
        t.join(START_TIMEOUT_S)
    if not accepted:
        popen.kill()
        popen.wait()
        raise PixelDataError(
            f"the decoder process did not start within {START_TIMEOUT_S:.0f} s "
            f"(exit status {popen.returncode})")
    return popen, accepted[0]


def shutdown() -> None:
    """Stop the decoder process if one runs (tests; it also ends with medview)."""
    global _worker
    with _lock:
        if _worker is not None:
            _worker.stop()
            _worker = None


def decode_in_sandbox(path: str, ts: str, plugin: str, indices: list[int],
                      frame_nbytes: int) -> list[tuple[np.ndarray, str]]:
    """Decode frames ``indices`` of ``path`` with pydicom's ``plugin`` in the child process.

    Parameters
    ----------
    path : str
        The DICOM file (already checked against its header by the caller).
    ts : str
        Its transfer syntax UID.
    plugin : str
        The pydicom decoder plugin to use (``"gdcm"``).
    indices : list of int
        Frames to decode, 0-based.
    frame_nbytes : int
        The most bytes one decoded frame may have (from the header): a larger answer is refused
        before it is received.

    Returns
    -------
    list of (ndarray, str)
        Per frame, the decoded array (as pydicom returns it) and its photometric
        interpretation.

    Raises
    ------
    PixelDataError
        The decoder failed, the child died (the signal is named) or took longer than
        :data:`FRAME_TIMEOUT_S` per frame.
    """
    global _worker
    request = json.dumps({"path": path, "ts": ts, "plugin": plugin, "indices": list(indices),
                          "max_bytes": int(frame_nbytes)}).encode()
    with _lock:
        if _worker is None or not _worker.alive():
            if _worker is not None:
                _worker.stop()
            if _worker is None:
                atexit.register(shutdown)
            _worker = _Worker()
        w = _worker
        try:
            w.conn.send_bytes(request)
            out = []
            for n, _ in enumerate(indices):
                timeout = (START_TIMEOUT_S if n == 0 else 0.0) + FRAME_TIMEOUT_S
                if not w.conn.poll(timeout):
                    w.stop()
                    _worker = None
                    raise PixelDataError(
                        f"{path}: the decoder took longer than {timeout:.0f} s for frame "
                        f"{indices[n]}: stopped")
                head = json.loads(w.conn.recv_bytes(_META_MAX))
                if not head.get("ok"):
                    # the child answered and waits for the next request: keep it
                    raise _Refused(f"{path}: {head.get('error', 'decoding failed')}")
                dtype = np.dtype(head["dtype"])
                shape = tuple(int(s) for s in head["shape"])
                if dtype.kind not in "iub" or int(np.prod(shape)) * dtype.itemsize > frame_nbytes:
                    raise PixelDataError(
                        f"{path}: the decoder gave a frame of {shape} {dtype}, more than the "
                        f"{frame_nbytes:,} bytes the header declares")
                data = w.conn.recv_bytes(frame_nbytes)
                arr = np.frombuffer(data, dtype=dtype)
                if arr.size != int(np.prod(shape)):
                    raise PixelDataError(f"{path}: the decoder sent a short frame")
                out.append((arr.reshape(shape), str(head.get("pi", ""))))
            return out
        except (EOFError, OSError) as exc:
            # the child died mid-answer (abort, segfault) or sent more than it announced
            reason = w.died() if not w.alive() or isinstance(exc, EOFError) else str(exc)
            w.stop()
            _worker = None
            raise PixelDataError(f"{path}: {reason}") from None
        except _Refused as exc:
            raise PixelDataError(str(exc)) from None
        except PixelDataError:
            # the child may still be mid-answer: start afresh next time
            w.stop()
            _worker = None
            raise


# --------------------------------------------------------------------------------------------
# the child


def _main() -> None:  # pragma: no cover - runs in the child process
    """``python -m medview.dicom.pixels._sandbox``: connect to the parent and serve it."""
    from multiprocessing.connection import Client

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl+C is for the parent; we end with it
    hello = json.loads(sys.stdin.buffer.read())
    # GDCM and friends may print to stdout/stderr: keep it off the parent's terminal
    # only for stdout (the protocol is the socket; stderr keeps real errors visible)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    conn = Client(hello["address"], authkey=bytes.fromhex(hello["authkey"]))
    _serve(conn, int(hello["parent"]))


def _serve(conn, parent_pid: int) -> None:  # pragma: no cover - runs in the child process
    """The child's loop: one request (JSON) in, per frame a JSON header and the raw bytes out."""
    from medview.children import die_with_parent

    die_with_parent(parent_pid)
    while True:
        try:
            req = json.loads(conn.recv_bytes(_META_MAX))
        except (EOFError, OSError):
            return
        try:
            _answer(conn, req)
        except (EOFError, OSError):
            return


def _answer(conn, req: dict) -> None:  # pragma: no cover - runs in the child process
    import pydicom
    from pydicom.pixels import get_decoder

    def fail(msg: str) -> None:
        conn.send_bytes(json.dumps({"ok": False, "error": msg}).encode())

    try:
        ds = pydicom.dcmread(req["path"], force=True)
        meta = ds.file_meta
        if not meta.get("TransferSyntaxUID"):
            meta.TransferSyntaxUID = req["ts"]
        decoder = get_decoder(req["ts"])
        frames = decoder.iter_array(ds, indices=req["indices"], decoding_plugin=req["plugin"])
        for arr, info in frames:
            if arr.nbytes > req["max_bytes"]:
                fail(f"a decoded frame has {arr.nbytes:,} bytes, the header allows "
                     f"{req['max_bytes']:,}")
                return
            arr = np.ascontiguousarray(arr)
            pi = str(info.get("photometric_interpretation", ""))
            conn.send_bytes(json.dumps({"ok": True, "dtype": arr.dtype.str,
                                        "shape": list(arr.shape), "pi": pi}).encode())
            conn.send_bytes(memoryview(arr).cast("B"))
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # plugin panics (pyo3) are BaseExceptions too
        fail(f"decoding with {req.get('plugin')} failed: {type(exc).__name__}: {exc}")


if __name__ == "__main__":  # pragma: no cover
    _main()
