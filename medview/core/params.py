"""Parameter annotations for processing steps: plain metadata, no behaviour.

A step's keyword parameters are annotated with ``Annotated[type, Range(...)]`` or
``Annotated[type, Choice(...)]`` (or a plain ``Literal``); the step registry in
:mod:`medview.pipeline` reads them once to generate the GUI form, the CLI flags, the chain's
JSON schema and the server's validation. They live in ``core`` so that core functions can
declare their own parameters without importing the pipeline.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Choice", "File", "Help", "Points", "Range"]


@dataclass(frozen=True)
class Range:
    """Numeric bounds (inclusive), a GUI step and a unit ("mm", "HU", "", "voxels", ...)."""

    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""


@dataclass(frozen=True)
class Choice:
    """The allowed values of a string parameter (a combo box in the GUI)."""

    values: tuple[str, ...]


@dataclass(frozen=True)
class Points:
    """A list of patient-space points (LPS mm), e.g. seeds filled by clicking in the viewer."""

    min_count: int = 0
    max_count: int | None = None


@dataclass(frozen=True)
class Help:
    """One line of help for a parameter, shown in the GUI and the CLI."""

    text: str


@dataclass(frozen=True)
class File:
    """A ``str`` parameter that names a file the step reads (e.g. a saved model).

    The offload client sends such files with a job and the server refuses paths it was not
    sent; ``suffixes`` filter the GUI's file chooser.
    """

    suffixes: tuple[str, ...] = ()
