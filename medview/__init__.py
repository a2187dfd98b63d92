"""medview: a DICOM viewer and analysis workstation.

``import medview`` stays light: heavy libraries (SimpleITK, Qt, pydicom's decoders) are
imported where they are used.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (start-up time)

__version__ = "0.1.0"

if TYPE_CHECKING:  # pragma: no cover
    from medview.core.volume import Volume

__all__ = ["Volume", "__version__", "load"]


def load(source, *, series: str | int | None = None, stack: int | None = None, catalog=None,
         progress=None) -> Volume:
    """Load a DICOM series as a :class:`~medview.core.volume.Volume`.

    See :func:`medview.dicom.series.loading.load` for the parameters.
    """
    from medview.dicom.series.loading import load as _load

    return _load(source, series=series, stack=stack, catalog=catalog, progress=progress)


def __getattr__(name: str):
    if name == "Volume":
        from medview.core.volume import Volume

        return Volume
    raise AttributeError(f"module 'medview' has no attribute {name!r}")
