"""Messages in the window's words.

The layers below the GUI word their errors for the command line and the Python API
("pass overwrite=True (--force)"). A reader of a dialog has neither: at the GUI boundary
(:class:`TaskError`) such phrases become what to do in the window.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["TaskError", "gui_text"]

_OVERWRITE = ("choose another name, or tick “Replace an existing file or folder” in the "
              "Export dialog")

#: (pattern, replacement): CLI/API phrasing → the window's; applied in order
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r" exists; pass overwrite=True \(--force\) to replace it"),
     " already exists — " + _OVERWRITE),
    (re.compile(r"would overwrite (.+?); use --force"),
     r"\1 already exist(s) — " + _OVERWRITE),
    (re.compile(r"name one with series=UID \(--series on the command line\)"),
     "open one of them from the series browser"),
    (re.compile(r"give its CA with --ca-bundle"),
     "choose its CA bundle in Settings ▸ Remote Endpoints"),
    (re.compile(r"--ca-bundle (\S+): no such file"), r"CA bundle \1: no such file"),
)


def gui_text(message: str) -> str:
    """``message`` with command-line and API wording replaced by the window's."""
    for pattern, replacement in _RULES:
        message = pattern.sub(replacement, message)
    return message


@dataclass(frozen=True)
class TaskError:
    """What went wrong in a task: the exception and its formatted traceback."""

    title: str
    exception: BaseException
    traceback: str

    @property
    def message(self) -> str:
        """The exception's text in the window's words (:func:`~medview.app.messages.gui_text`)."""
        return gui_text(str(self.exception) or type(self.exception).__name__)
