"""Text for people: file names that are not valid UTF-8 shown with replacement characters.

A POSIX file name is bytes; Python holds one that is not UTF-8 as a str with surrogate
escapes (``os.fsdecode``), which the catalog stores and the readers open as is. Printing that
str fails (or shows ``\\udcff``); :func:`printable` shows each undecodable byte as U+FFFD.
"""

from __future__ import annotations

import os

__all__ = ["printable"]


def printable(text: str | os.PathLike) -> str:
    """``text`` with every surrogate-escaped byte replaced by U+FFFD (�); other text as is."""
    text = os.fspath(text)
    if isinstance(text, bytes):
        return text.decode("utf-8", "replace")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text
