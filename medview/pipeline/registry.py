"""The step registry: every processing step declared once.

A step is a plain function in :mod:`medview.core` whose signature says everything::

    def gaussian(volume: Volume, *,
                 sigma_mm: Annotated[float, Range(0.0, 20.0, step=0.1, unit="mm")] = 1.0,
                 progress: Progress = NO_PROGRESS) -> Volume:
        '''Smooth with an isotropic Gaussian kernel of `sigma_mm` millimetres.'''

Positional parameters are the step's *inputs* (Volume, LabelMap, optional with ``| None``);
keyword-only parameters are its *params* (float/int with :class:`Range`, bool, ``Literal`` or
:class:`Choice` strings, :class:`Points`, kernels as ``list[list[float]]``); ``progress`` is
passed by the runner. :func:`register` (or the :func:`step` decorator) reads the signature
once into a :class:`StepSpec`, from which the GUI form, the CLI, the chain JSON schema and the
server's validation are generated.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, get_args, get_origin

from medview.core.labelmap import LabelMap
from medview.core.params import Choice, Help, Points, Range
from medview.core.table import Table
from medview.core.volume import Volume

__all__ = [
    "CATEGORIES",
    "ParamSpec",
    "StepSpec",
    "all_steps",
    "get_step",
    "register",
    "step",
]

CATEGORIES = ("Preprocess", "Enhance", "Features", "Segment", "Fuse")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a step, as the GUI, CLI, schema and server see it."""

    name: str
    kind: str  # "float" | "int" | "bool" | "choice" | "str" | "points" | "numbers" | "matrix"
    default: Any = None
    required: bool = False
    optional: bool = False  # None allowed
    min: float | None = None
    max: float | None = None
    step: float | None = None
    unit: str = ""
    choices: tuple[str, ...] = ()
    help: str = ""
    min_count: int = 0
    max_count: int | None = None

    def json_schema(self) -> dict:
        s: dict[str, Any]
        if self.kind == "float":
            s = {"type": "number"}
        elif self.kind == "int":
            s = {"type": "integer"}
        elif self.kind == "bool":
            s = {"type": "boolean"}
        elif self.kind == "choice":
            s = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "str":
            s = {"type": "string"}
        elif self.kind == "points":
            s = {"type": "array", "minItems": self.min_count,
                 "items": {"type": "array", "items": {"type": "number"},
                           "minItems": 3, "maxItems": 3}}
            if self.max_count is not None:
                s["maxItems"] = self.max_count
        elif self.kind == "numbers":
            item: dict[str, Any] = {"type": "number"}
            if self.min is not None:
                item["minimum"] = self.min
            if self.max is not None:
                item["maximum"] = self.max
            s = {"type": "array", "minItems": 1, "items": item}
        else:  # matrix
            s = {"type": "array", "minItems": 1,
                 "items": {"type": "array", "minItems": 1, "items": {"type": "number"}}}
        if self.kind != "numbers":
            if self.min is not None:
                s["minimum"] = self.min
            if self.max is not None:
                s["maximum"] = self.max
        if self.optional:
            s = {"anyOf": [s, {"type": "null"}]}
        if not self.required:
            s["default"] = self.default
        if self.help:
            s["description"] = self.help + (f" [{self.unit}]" if self.unit else "")
        return s

    def validate(self, value: Any) -> Any:
        """The value converted to the parameter's type; ValueError naming the problem."""
        if value is None:
            if self.optional:
                return None
            raise ValueError("must not be null")
        k = self.kind
        if k == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"expected true or false, got {value!r}")
            return value
        if k in ("float", "int"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"expected a number, got {value!r}")
            if k == "int":
                if float(value) != int(value):
                    raise ValueError(f"expected an integer, got {value!r}")
                value = int(value)
            else:
                value = float(value)
            if value != value:  # NaN
                raise ValueError("expected a number, got NaN")
            if self.min is not None and value < self.min:
                raise ValueError(f"{value} is below the minimum {self.min:g}{self.unit}")
            if self.max is not None and value > self.max:
                raise ValueError(f"{value} is above the maximum {self.max:g}{self.unit}")
            return value
        if k == "choice":
            if value not in self.choices:
                raise ValueError(f"{value!r} is not one of {', '.join(self.choices)}")
            return value
        if k == "str":
            if not isinstance(value, str):
                raise ValueError(f"expected a string, got {value!r}")
            return value
        if k == "points":
            try:
                pts = [tuple(float(c) for c in p) for p in value]
            except (TypeError, ValueError):
                raise ValueError(f"expected a list of [x, y, z] points, got {value!r}") from None
            if any(len(p) != 3 for p in pts):
                raise ValueError("each point needs 3 coordinates (x, y, z in LPS mm)")
            if len(pts) < self.min_count:
                raise ValueError(f"needs at least {self.min_count} point(s), got {len(pts)}")
            if self.max_count is not None and len(pts) > self.max_count:
                raise ValueError(f"takes at most {self.max_count} point(s), got {len(pts)}")
            return [list(p) for p in pts]
        if k == "numbers":
            if isinstance(value, str) or not isinstance(value, list | tuple) or not value:
                raise ValueError(f"expected a non-empty list of numbers, got {value!r}")
            out = []
            for v in value:
                if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
                    raise ValueError(f"expected numbers, got {v!r}")
                if self.min is not None and v < self.min:
                    raise ValueError(f"{v} is below the minimum {self.min:g}{self.unit}")
                if self.max is not None and v > self.max:
                    raise ValueError(f"{v} is above the maximum {self.max:g}{self.unit}")
                out.append(float(v))
            return out
        # matrix
        try:
            rows = [[float(c) for c in r] for r in value]
        except (TypeError, ValueError):
            raise ValueError(f"expected a list of rows of numbers, got {value!r}") from None
        if not rows or len({len(r) for r in rows}) != 1 or not rows[0]:
            raise ValueError("expected a non-empty rectangular matrix")
        return rows


@dataclass(frozen=True)
class InputSpec:
    """A data input of a step (a positional parameter)."""

    name: str
    kind: str  # "volume" | "labelmap"
    optional: bool = False


@dataclass(frozen=True)
class StepSpec:
    """Everything known about a step, read once from its function."""

    id: str
    version: int
    title: str
    category: str
    func: Callable
    doc: str
    inputs: tuple[InputSpec, ...]
    params: tuple[ParamSpec, ...]
    returns: str  # "volume" | "labelmap" | "table" | "outputs"
    takes_progress: bool = False
    tags: tuple[str, ...] = field(default=())
    #: safe to split into slabs along z: ``halo(params, spacing_xyz)`` → the slices each slab
    #: needs beyond its own for its voxels to equal the whole run's (0: slice by slice), or
    #: None for these parameters; no function: the step runs whole
    halo: Callable[[dict, tuple], int | None] | None = None

    def split_halo(self, params: dict, spacing: tuple) -> int | None:
        """The halo in slices for splitting this step with ``params``, None: run whole."""
        if self.halo is None:
            return None
        return self.halo({**self.defaults(), **params}, tuple(spacing))

    def param(self, name: str) -> ParamSpec:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params if not p.required}

    def params_schema(self) -> dict:
        return {
            "type": "object",
            "additionalProperties": False,
            "properties": {p.name: p.json_schema() for p in self.params},
            "required": [p.name for p in self.params if p.required],
        }

    def describe(self) -> dict:
        """A JSON-able description (``medview steps --json``, ``GET /api/v1/steps``)."""
        return {
            "id": self.id,
            "version": self.version,
            "title": self.title,
            "category": self.category,
            "doc": self.doc,
            "inputs": [{"name": i.name, "kind": i.kind, "optional": i.optional}
                       for i in self.inputs],
            "returns": self.returns,
            "params": self.params_schema(),
            "split": "slabs" if self.halo is not None else "whole",
        }


_REGISTRY: dict[str, StepSpec] = {}


def _kind_of_data(tp) -> tuple[str, bool] | None:
    """("volume"|"labelmap", optional) for an input annotation, or None."""
    optional = False
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) != len(get_args(tp))
        if len(args) != 1:
            return None
        tp = args[0]
    if tp is LabelMap:
        return "labelmap", optional
    if tp is Volume:
        return "volume", optional
    return None


def _returns(tp) -> str:
    if tp is LabelMap:
        return "labelmap"
    if tp is Volume:
        return "volume"
    if tp is Table:
        return "table"
    return "outputs"


def _doc_params(doc: str) -> dict[str, str]:
    """First line of each parameter's description in a numpydoc 'Parameters' section."""
    out: dict[str, str] = {}
    lines = doc.splitlines()
    in_params = False
    current = None
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped == "Parameters" and i + 1 < len(lines) and set(lines[i + 1].strip()) == {"-"}:
            in_params = True
            continue
        if in_params and stripped and set(stripped) == {"-"}:
            continue
        if in_params and stripped in ("Returns", "Raises", "Notes", "Examples", "See Also"):
            break
        if not in_params:
            continue
        m = re.match(r"^(\w+)\s*:", line)  # getdoc dedents: names start the line
        if m:
            current = m.group(1)
            out[current] = ""
        elif current and stripped and not out[current]:
            out[current] = stripped
    return out


def _param_spec(name: str, tp, default, doc_help: str) -> ParamSpec:
    meta: list = []
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
    optional = False
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) != len(get_args(tp))
        tp = args[0] if len(args) == 1 else tp
    rng = next((m for m in meta if isinstance(m, Range)), None)
    choice = next((m for m in meta if isinstance(m, Choice)), None)
    points = next((m for m in meta if isinstance(m, Points)), None)
    help_ = next((m.text for m in meta if isinstance(m, Help)), doc_help)
    required = default is inspect.Parameter.empty
    kw: dict[str, Any] = {"default": None if required else default, "required": required,
                          "optional": optional, "help": help_}
    if rng is not None:
        kw.update(min=rng.min, max=rng.max, step=rng.step, unit=rng.unit)
    if points is not None:
        return ParamSpec(name, "points", min_count=points.min_count,
                         max_count=points.max_count, **kw)
    if get_origin(tp) is Literal:
        return ParamSpec(name, "choice", choices=tuple(str(a) for a in get_args(tp)), **kw)
    if choice is not None:
        return ParamSpec(name, "choice", choices=tuple(choice.values), **kw)
    if tp is bool:
        return ParamSpec(name, "bool", **kw)
    if tp is int:
        return ParamSpec(name, "int", **kw)
    if tp is float:
        return ParamSpec(name, "float", **kw)
    if tp is str:
        return ParamSpec(name, "str", **kw)
    if get_origin(tp) in (list, tuple):
        args = get_args(tp)
        if args and args[0] in (float, int):  # list[float]: a list of numbers
            if kw["default"] is not None:
                kw["default"] = [float(v) for v in kw["default"]]
            return ParamSpec(name, "numbers", **kw)
        return ParamSpec(name, "matrix", **kw)
    raise TypeError(f"parameter {name!r}: unsupported annotation {tp!r}")


def register(func: Callable, *, id: str, version: int = 1, title: str, category: str,
             tags: tuple[str, ...] = (), replace: bool = False,
             halo: Callable[[dict, tuple], int | None] | None = None) -> StepSpec:
    """Read ``func``'s signature into a StepSpec and add it to the registry.

    Raises
    ------
    ValueError
        On a malformed id, an unknown category or a duplicate id.
    TypeError
        On a parameter whose annotation the registry cannot turn into a form field.
    """
    if not _ID_RE.match(id):
        raise ValueError(f"step id {id!r}: use dotted lower-case words, e.g. 'smooth.gaussian'")
    if category not in CATEGORIES:
        raise ValueError(f"step {id}: category {category!r} is not one of {CATEGORIES}")
    if id in _REGISTRY and not replace and _REGISTRY[id].func is not func:
        raise ValueError(f"step {id!r} is already registered")
    hints = typing.get_type_hints(func, include_extras=True)
    sig = inspect.signature(func)
    doc = inspect.getdoc(func) or ""
    doc_help = _doc_params(doc)
    inputs, params = [], []
    takes_progress = False
    for p in sig.parameters.values():
        if p.name == "progress":
            takes_progress = True
            continue
        tp = hints.get(p.name)
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            data = _kind_of_data(tp)
            if data is None:
                raise TypeError(f"step {id}: input {p.name!r} must be a Volume or LabelMap")
            inputs.append(InputSpec(p.name, data[0], data[1] or p.default is None))
        elif p.kind == p.KEYWORD_ONLY:
            params.append(_param_spec(p.name, tp, p.default, doc_help.get(p.name, "")))
    if not inputs:
        raise TypeError(f"step {id}: needs at least one data input")
    spec = StepSpec(id, version, title, category, func, doc, tuple(inputs), tuple(params),
                    _returns(hints.get("return")), takes_progress, tuple(tags), halo)
    _REGISTRY[id] = spec
    return spec


def step(id: str, *, version: int = 1, title: str, category: str, tags: tuple[str, ...] = ()):
    """Decorator form of :func:`register`; returns the function unchanged."""

    def deco(func: Callable) -> Callable:
        register(func, id=id, version=version, title=title, category=category, tags=tags)
        return func

    return deco


def _load_builtin_steps() -> None:
    from importlib.metadata import entry_points

    from medview.pipeline import steps  # noqa: F401  (registers on import)

    for ep in entry_points(group="medview.steps"):
        ep.load()


_loaded = False
_loading = False
_load_lock = threading.RLock()


def _ensure_loaded() -> None:
    # threads of a server ask at once: the others wait for the whole registry (they used to
    # get a half-loaded one); a step module asking while it loads gets what is there so far
    global _loaded, _loading
    if _loaded:
        return
    with _load_lock:
        if _loaded or _loading:
            return
        _loading = True
        try:
            _load_builtin_steps()
            _loaded = True
        finally:
            _loading = False


def all_steps() -> list[StepSpec]:
    """Every registered step, by category then id."""
    _ensure_loaded()
    order = {c: i for i, c in enumerate(CATEGORIES)}
    return sorted(_REGISTRY.values(), key=lambda s: (order[s.category], s.id))


def get_step(id: str) -> StepSpec:
    """The step with this id; KeyError listing close matches if unknown."""
    _ensure_loaded()
    try:
        return _REGISTRY[id]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(id, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise KeyError(f"unknown step {id!r}{hint}") from None
