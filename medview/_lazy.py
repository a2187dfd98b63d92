"""Lazy exports: a package names its public functions and classes without importing them.

A package's ``__init__.py`` maps each public name to the module that defines it; the module is
imported on first use, so ``import medview.core.filters`` costs nothing and
``from medview.core.filters import gaussian`` still works (scikit-image's ``lazy_loader``)::

    __all__ = ["gaussian"]
    __getattr__, __dir__ = attach(__name__, {"gaussian": "medview.core.filters.smoothing"})
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping


def attach(package: str, names: Mapping[str, str]) -> tuple[Callable, Callable]:
    """The module-level ``__getattr__`` and ``__dir__`` of a package with lazy exports.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : mapping of str to str
        Each public name → the dotted name of the module that defines it.

    Returns
    -------
    tuple of callable
        ``(__getattr__, __dir__)``, to assign in the package's namespace.
    """

    def getattr_(name: str):
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def dir_() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(names))

    return getattr_, dir_
