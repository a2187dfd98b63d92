"""Parameter kinds: what a step parameter holds, each kind an object that knows its own rules.

Every keyword parameter of a registered step has a kind — :class:`Float`, :class:`Int`,
:class:`Bool`, :class:`Choice`, :class:`Text`, :class:`Points`, :class:`Numbers`,
:class:`Kernel` or :class:`File` — built once from the function's annotation by the registry.
The kind carries everything the rest of medview needs to know about such a value:

- :meth:`Kind.check`: a JSON value → the clean value, or :class:`ValueError` saying what was
  wrong with it (the chain, the server and the GUI all validate through it);
- :meth:`Kind.schema`: its JSON schema (``medview steps --json``, ``GET /api/v1/steps``);
- :meth:`Kind.parse` / :meth:`Kind.format`: from and to command-line text
  (``medview run --set 1.sigma_mm=2``);
- :meth:`Kind.empty`: what a required parameter holds until the user fills it.

The GUI's editor of each kind lives in :mod:`medview.gui.param_editors`, looked up by the
kind's class. A new kind is a new class here (and an editor there); nothing dispatches on a
kind's name. The ``name`` of each kind is its stable spelling in ``medview steps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Bool", "Choice", "File", "Float", "Int", "Kernel", "Kind", "Numbers", "Points",
           "Text"]


def _number(value: Any) -> float | int:
    """``value`` if it is a JSON number (not a bool, not NaN), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"expected a number, got {value!r}")
    if value != value:
        raise ValueError("expected a number, got NaN")
    return value


def _text_number(text: str, convert=float) -> float | int:
    try:
        return convert(text.strip())
    except ValueError:
        raise ValueError(f"expected a number, got {text!r}") from None


@dataclass(frozen=True)
class Kind:
    """The base of every parameter kind; subclasses override what differs."""

    name: ClassVar[str] = ""

    def check(self, value: Any) -> Any:
        """``value`` (from JSON or a widget) converted to this kind; ValueError naming the
        bad value otherwise."""
        raise NotImplementedError

    def schema(self) -> dict:
        """The JSON schema of one value (without default, description or null)."""
        raise NotImplementedError

    def parse(self, text: str) -> Any:
        """A value from command-line text (checked afterwards with :meth:`check`)."""
        return text

    def format(self, value: Any) -> str:
        """The text :meth:`parse` reads back as ``value``."""
        return "" if value is None else str(value)

    def empty(self) -> Any:
        """What a required parameter holds until it is set (None: nothing)."""
        return None

    def summary(self) -> str:
        """One line for ``medview steps``: the kind and its limits."""
        return self.name

    def hint(self) -> str:
        """A line for the GUI's tooltip about the values it takes ("" if nothing to add)."""
        return ""


@dataclass(frozen=True)
class _Number(Kind):
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""

    def _bounded(self, value):
        if self.min is not None and value < self.min:
            raise ValueError(f"{value} is below the minimum {self.min:g}{self.unit}")
        if self.max is not None and value > self.max:
            raise ValueError(f"{value} is above the maximum {self.max:g}{self.unit}")
        return value

    def _bounds_schema(self, s: dict) -> dict:
        if self.min is not None:
            s["minimum"] = self.min
        if self.max is not None:
            s["maximum"] = self.max
        return s

    def hint(self) -> str:
        if self.min is None and self.max is None:
            return ""
        lo = "−∞" if self.min is None else f"{self.min:g}"
        hi = "∞" if self.max is None else f"{self.max:g}"
        return f"range {lo} … {hi}{(' ' + self.unit) if self.unit else ''}"

    def summary(self) -> str:
        rng = ""
        if self.min is not None or self.max is not None:
            rng = f" in [{'' if self.min is None else f'{self.min:g}'}, " \
                  f"{'' if self.max is None else f'{self.max:g}'}]"
        return f"{self.name}{rng}{(' ' + self.unit) if self.unit else ''}"


@dataclass(frozen=True)
class Float(_Number):
    """A real number with optional bounds (inclusive), GUI step and unit."""

    name: ClassVar[str] = "float"

    def check(self, value: Any) -> float:
        return self._bounded(float(_number(value)))

    def schema(self) -> dict:
        return self._bounds_schema({"type": "number"})

    def parse(self, text: str) -> float:
        return _text_number(text)

    def format(self, value: Any) -> str:
        return "" if value is None else repr(float(value))


@dataclass(frozen=True)
class Int(_Number):
    """A whole number with optional bounds; ``2.0`` is accepted as 2, ``2.5`` is not."""

    name: ClassVar[str] = "int"

    def check(self, value: Any) -> int:
        value = _number(value)
        if math.isinf(value) or float(value) != int(value):
            raise ValueError(f"expected an integer, got {value!r}")
        return self._bounded(int(value))

    def schema(self) -> dict:
        return self._bounds_schema({"type": "integer"})

    def parse(self, text: str) -> int | float:
        value = _text_number(text)
        return int(value) if float(value).is_integer() else value

    def format(self, value: Any) -> str:
        return "" if value is None else str(int(value))


_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


@dataclass(frozen=True)
class Bool(Kind):
    """True or false (JSON booleans only: 1 and "yes" are not booleans)."""

    name: ClassVar[str] = "bool"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {value!r}")
        return value

    def schema(self) -> dict:
        return {"type": "boolean"}

    def parse(self, text: str) -> bool | str:
        t = text.strip().lower()
        if t in _TRUE or t in _FALSE:
            return t in _TRUE
        raise ValueError(f"expected true or false (yes/no, on/off, 1/0), got {text!r}")

    def format(self, value: Any) -> str:
        return "true" if value else "false"


@dataclass(frozen=True)
class Choice(Kind):
    """One of a fixed list of strings (a ``Literal`` or a :class:`~medview.core.params.Choice`)."""

    name: ClassVar[str] = "choice"
    choices: tuple[str, ...] = ()

    def check(self, value: Any) -> str:
        if value not in self.choices:
            raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
        return value

    def schema(self) -> dict:
        return {"type": "string", "enum": list(self.choices)}

    def parse(self, text: str) -> str:
        return text.strip()

    def summary(self) -> str:
        return f"choice one of {', '.join(self.choices)}"


@dataclass(frozen=True)
class Text(Kind):
    """Free text."""

    name: ClassVar[str] = "str"

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"expected a string, got {value!r}")
        return value

    def schema(self) -> dict:
        return {"type": "string"}

    def empty(self) -> str:
        return ""


@dataclass(frozen=True)
class File(Text):
    """The path of a file the step reads (e.g. a saved classifier).

    Files are what the offload client uploads with a job and what the server never opens on
    a client's say-so: both find them by this kind. ``suffixes`` (e.g. ``(".model",)``) filter
    the GUI's file chooser; any path is accepted.
    """

    name: ClassVar[str] = "file"
    suffixes: tuple[str, ...] = ()

    def schema(self) -> dict:
        return {"type": "string", "format": "path"}

    def parse(self, text: str) -> str:
        return text.strip()

    def summary(self) -> str:
        return "file" + (f" ({', '.join(self.suffixes)})" if self.suffixes else "")

    def hint(self) -> str:
        return "a file" + (f" ({', '.join(self.suffixes)})" if self.suffixes else "")


def _split_rows(text: str) -> list[str]:
    return [row for row in text.split(";") if row.strip()]


def _row_numbers(row: str) -> list[float]:
    parts = [t for t in row.replace(",", " ").replace("(", " ").replace(")", " ").replace(
        "[", " ").replace("]", " ").split() if t]
    return [_text_number(t) for t in parts]


@dataclass(frozen=True)
class Points(Kind):
    """A list of patient positions ``[x, y, z]`` (LPS mm), e.g. region-growing seeds."""

    name: ClassVar[str] = "points"
    min_count: int = 0
    max_count: int | None = None

    def check(self, value: Any) -> list[list[float]]:
        try:
            pts = [tuple(float(c) for c in p) for p in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected a list of [x, y, z] points, got {value!r}") from None
        if any(len(p) != 3 for p in pts):
            raise ValueError(f"each point needs 3 coordinates (x, y, z in LPS mm), got "
                             f"{value!r}")
        if len(pts) < self.min_count:
            raise ValueError(f"needs at least {self.min_count} point(s), got {len(pts)}")
        if self.max_count is not None and len(pts) > self.max_count:
            raise ValueError(f"takes at most {self.max_count} point(s), got {len(pts)}")
        return [list(p) for p in pts]

    def schema(self) -> dict:
        s: dict[str, Any] = {"type": "array", "minItems": self.min_count,
                             "items": {"type": "array", "items": {"type": "number"},
                                       "minItems": 3, "maxItems": 3}}
        if self.max_count is not None:
            s["maxItems"] = self.max_count
        return s

    def parse(self, text: str) -> list[list[float]]:
        """``"10, -20, 30; 11 -20 30"``: points separated by ``;``."""
        return [_row_numbers(row) for row in _split_rows(text)]

    def format(self, value: Any) -> str:
        return "; ".join(", ".join(f"{c:g}" for c in p) for p in value or [])

    def hint(self) -> str:
        return "patient positions (LPS, mm)"

    def display(self, value: Any) -> str:
        """Points for reading (one decimal), as the GUI shows them."""
        return "; ".join("(" + ", ".join(f"{c:.1f}" for c in p) + ")" for p in value or [])

    def empty(self) -> list:
        return []


@dataclass(frozen=True)
class Numbers(_Number):
    """A non-empty list of numbers, each within the bounds (e.g. percentiles)."""

    name: ClassVar[str] = "numbers"

    def check(self, value: Any) -> list[float]:
        if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
            raise ValueError(f"expected a non-empty list of numbers, got {value!r}")
        out = []
        for v in value:
            if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
                raise ValueError(f"expected numbers, got {v!r}")
            out.append(float(self._bounded(v)))
        return out

    def schema(self) -> dict:
        return {"type": "array", "minItems": 1,
                "items": self._bounds_schema({"type": "number"})}

    def parse(self, text: str) -> list[float]:
        """``"1, 5, 25"`` (commas, spaces or semicolons between the numbers)."""
        parts = [t for t in text.replace(";", ",").replace(" ", ",").split(",") if t.strip()]
        try:
            return [float(t) for t in parts]
        except ValueError:
            raise ValueError(f"expected numbers separated by commas, got {text!r}") from None

    def format(self, value: Any) -> str:
        return ", ".join(f"{v:g}" for v in value or [])

    def empty(self) -> list:
        return []


@dataclass(frozen=True)
class Kernel(Kind):
    """A rectangular matrix of weights (rows along y, columns along x), e.g. a 5×5 mean."""

    name: ClassVar[str] = "matrix"

    def check(self, value: Any) -> list[list[float]]:
        try:
            rows = [[float(c) for c in r] for r in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected a list of rows of numbers, got {value!r}") from None
        if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
            raise ValueError(f"expected a non-empty rectangular matrix, got {value!r}")
        return rows

    def schema(self) -> dict:
        return {"type": "array", "minItems": 1,
                "items": {"type": "array", "minItems": 1, "items": {"type": "number"}}}

    def parse(self, text: str) -> list[list[float]] | None:
        """``"1 2 1; 2 4 2; 1 2 1"``: rows separated by ``;`` ("" is no kernel)."""
        if not text.strip():
            return None
        try:
            return [[float(t) for t in row.replace(",", " ").split()]
                    for row in _split_rows(text)]
        except ValueError:
            raise ValueError(f"expected rows of numbers separated by ';', got {text!r}") \
                from None

    def format(self, value: Any) -> str:
        return "; ".join(" ".join(f"{v:g}" for v in row) for row in value or [])

    def empty(self) -> list:
        return []
