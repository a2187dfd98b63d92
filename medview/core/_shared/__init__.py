"""What every core algorithm shares: input checks, the per-slice thread pool.

Public names are imported lazily from the modules below.
"""

from __future__ import annotations

from medview._lazy import attach

__all__ = [
    "as_float32",
    "check_finite",
    "check_labels",
    "check_mask",
    "check_non_negative",
    "check_positive",
    "check_same_grid",
    "check_scalar",
    "each_slice",
    "map_slices",
    "worker_count",
]

__getattr__, __dir__ = attach(__name__, {
    "as_float32": "medview.core._shared.checks",
    "check_finite": "medview.core._shared.checks",
    "check_labels": "medview.core._shared.checks",
    "check_mask": "medview.core._shared.checks",
    "check_non_negative": "medview.core._shared.checks",
    "check_positive": "medview.core._shared.checks",
    "check_same_grid": "medview.core._shared.checks",
    "check_scalar": "medview.core._shared.checks",
    "each_slice": "medview.core._shared.checks",
    "map_slices": "medview.core._shared.parallel",
    "worker_count": "medview.core._shared.parallel",
})
