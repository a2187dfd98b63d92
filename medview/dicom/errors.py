"""Errors of the DICOM layer. Each says what was found, what was expected, what to do."""

from __future__ import annotations


class DicomError(Exception):
    """Base class of medview's DICOM errors."""


class UnreadableFileError(DicomError):
    """A file that cannot be used as a DICOM image: ``path`` and ``reason`` say why."""

    def __init__(self, path: str, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class PixelDataError(DicomError):
    """Pixel data that cannot be decoded (missing decoder, truncated, inconsistent sizes)."""


class SeriesError(DicomError):
    """A series that cannot be assembled into a volume."""


class AmbiguousSourceError(SeriesError):
    """The source holds several series and none was named; ``choices`` lists them."""

    def __init__(self, message: str, choices: list[dict]):
        super().__init__(message)
        self.choices = choices
