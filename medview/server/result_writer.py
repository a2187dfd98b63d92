"""A job's result written step by step: each output goes into the result file as soon as its
step has made it, while the later steps compute.

The file is a header-last bundle (:mod:`medview.remote.wire`): the blobs of the outputs in the
order they came, then the header and its footer once the chain has ended. Before each blob is
written, ``announce(ready, None)`` says how far the file will then reach (the server lets the
client download that much already); once the chain has ended and the rest is encoded,
``announce(size, size)`` says the final size. A job that fails or is cancelled half-way leaves
a file without its footer: no reader takes it for a result (and the server deletes it).

Writes happen in a thread of their own, so the next step computes meanwhile; the outputs are
the chain's own arrays (views, no copies): memory is what the chain holds anyway.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from medview.core.volume import Volume
from medview.remote.wire import WireError, encode_item, stream_footer, stream_prefix

__all__ = ["Announce", "ResultWriter"]

#: ``announce(ready, size)``: the file will reach ``ready`` bytes; ``size`` once it is final
Announce = Callable[[int, "int | None"], None]
_PIECE = 1 << 20


class ResultWriter:
    """Writes the result bundle into ``path`` as outputs arrive (:meth:`add`), then
    :meth:`finish`. ``skip``: names never written (the job's inputs)."""

    def __init__(self, path: Path, *, announce: Announce, encoding: str = "raw",
                 skip: frozenset[str] | set[str] = frozenset(), sync: bool = True):
        from medview.server.worker import SyncBehind

        self.path = Path(path)
        self.encoding = encoding
        self._announce = announce
        self._skip = set(skip)
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed by finish/abort
        self._syncer = SyncBehind(self._file.fileno()) if sync else None
        self.items: list[dict] = []
        self.written: set[str] = set()
        self.offset = 0
        self._error: BaseException | None = None
        self._queue: queue.Queue = queue.Queue()
        self._write([stream_prefix()])
        self._thread = threading.Thread(target=self._loop, name="medview-result-writer",
                                        daemon=True)
        self._thread.start()

    def add(self, name: str, value: Any) -> None:
        """An output the chain has made (called by the runner, in the computing thread):
        arrays are written now, behind the next step; anything else at :meth:`finish`."""
        if name not in self._skip and isinstance(value, Volume):
            self._queue.put((name, value))

    def _loop(self) -> None:
        while (got := self._queue.get()) is not None:
            if self._error is not None:
                continue
            try:
                self._append(*got)
            except (OSError, WireError) as exc:  # said by finish()
                self._error = exc
            del got

    def _append(self, name: str, value: Any) -> None:
        item, parts = encode_item(name, value, encoding=self.encoding)
        self.items.append(item)
        self.written.add(name)
        self._announce(self.offset + sum(len(p) for p in parts), None)
        self._write(parts)
        # all of what was announced is in the file now, not partly in its buffer until the
        # next step ends (a reader that waits for it may time out meanwhile)
        self._file.flush()

    def _write(self, parts) -> None:
        for p in parts:
            mv = memoryview(p).cast("B")
            for start in range(0, len(mv), _PIECE):
                n = self._file.write(mv[start:start + _PIECE])
                self.offset += n
                if self._syncer is not None:
                    self._syncer.wrote(n)
            del mv

    def _stop(self) -> None:
        if self._thread.is_alive():
            self._queue.put(None)
            self._thread.join()

    def finish(self, meta: Mapping[str, Any], outputs: Mapping[str, Any]) -> int:
        """Write what was not written yet (tables, models …) and the header; returns the
        file's size. ``outputs``: every value the result holds, in the result's order.

        Raises
        ------
        WireError
            If an output cannot travel.
        OSError
            If the file could not be written or flushed to disk.
        """
        try:
            self._stop()
            if self._error is not None:
                raise self._error
            items, rest = self._items(outputs)
            tail = stream_footer(meta, items)
            size = self.offset + sum(len(p) for _, parts in rest for p in parts) + len(tail)
            self._announce(size, size)
            for _, parts in rest:
                self._write(parts)
            self._write([tail])
            self._file.flush()
            if self._syncer is not None:
                self._syncer.finish()
            return size
        finally:
            self.abort()

    def _items(self, outputs: Mapping[str, Any]) -> tuple[list[dict], list]:
        """The header's items and what is left to write (``(item, parts)`` each): the
        outputs in the result's order, except that blobs not written yet (models, files)
        come after the written ones (a reader takes the blobs in the items' order)."""
        items, rest = [], []
        for name, value in outputs.items():
            if name in self.written:
                items.append(next(it for it in self.items if it["name"] == name))
                continue
            item, parts = encode_item(name, value, encoding=self.encoding)
            if parts:
                rest.append((item, parts))
            else:  # a table: in the header only, in its place
                items.append(item)
        written = [it for it in items if it["name"] in self.written]
        if written != self.items:  # the outputs came in another order than the result's
            items = self.items + [it for it in items if it["name"] not in self.written]
        return items + [item for item, _ in rest], rest

    def abort(self) -> None:
        """Stop writing (the chain failed or was cancelled); the file is left as it is,
        without a footer, for its owner to delete."""
        self._stop()
        if self._syncer is not None:
            self._syncer.join()
        self._file.close()
