"""What the command modules share: exit codes, terminal progress, the catalog."""

from __future__ import annotations

import sys
from contextlib import contextmanager

EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


@contextmanager
def terminal_progress(description: str, *, enabled: bool | None = None):
    """A :class:`Progress` drawing a bar on stderr when it is a terminal."""
    from medview.core.progress import Progress

    if enabled is None:
        enabled = sys.stderr.isatty()
    if not enabled:
        yield Progress()
        return
    from tqdm import tqdm

    bar = tqdm(total=1000, desc=description, unit="‰", leave=False, file=sys.stderr,
               bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")

    def update(fraction: float, message: str) -> None:
        bar.n = int(fraction * 1000)
        bar.set_postfix_str(message[:60], refresh=False)
        bar.refresh()

    try:
        yield Progress(update)
    finally:
        bar.close()


def open_catalog(args):
    from medview.dicom.catalog.db import Catalog

    return Catalog(args.db) if args.db else Catalog()


def catalog_for(args, source: str):
    """The catalog, when ``source`` is a series UID to look up there; else None."""
    from medview.dicom.series.loading import is_series_uid

    return open_catalog(args) if is_series_uid(source) else None
