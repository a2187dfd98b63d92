"""Table: what measurement steps return (statistics, texture measures, component volumes)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Table"]


def _plain(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


@dataclass(frozen=True)
class Table:
    """Rows of named values, with a title and optional units per column."""

    rows: tuple[Mapping[str, Any], ...]
    title: str = ""
    units: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        rows = tuple({k: _plain(v) for k, v in r.items()} for r in self.rows)
        object.__setattr__(self, "rows", rows)

    @classmethod
    def from_columns(cls, columns: Mapping[str, Sequence], **kw) -> Table:
        names = list(columns)
        n = len(columns[names[0]]) if names else 0
        return cls(tuple({k: columns[k][i] for k in names} for i in range(n)), **kw)

    @property
    def columns(self) -> list[str]:
        seen: dict[str, None] = {}
        for r in self.rows:
            for k in r:
                seen.setdefault(k, None)
        return list(seen)

    def column(self, name: str) -> list:
        return [r.get(name) for r in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    def to_csv(self) -> str:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=self.columns, lineterminator="\n")
        w.writeheader()
        for r in self.rows:
            w.writerow({k: json.dumps(v) if isinstance(v, list | dict) else v
                        for k, v in r.items()})
        return buf.getvalue()

    def to_json(self) -> str:
        return json.dumps({"title": self.title, "units": dict(self.units),
                           "rows": list(self.rows)}, indent=2)
