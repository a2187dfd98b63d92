"""The step registry: every processing step declared once.

A step is a plain function in :mod:`medview.core` whose signature says everything::

    def gaussian(volume: Volume, *,
                 sigma_mm: Annotated[float, Range(0.0, 20.0, step=0.1, unit="mm")] = 1.0,
                 progress: Progress = NO_PROGRESS) -> Volume:
        '''Smooth with an isotropic Gaussian kernel of `sigma_mm` millimetres.'''

Positional parameters are the step's *inputs* (Volume, LabelMap, optional with ``| None``);
keyword-only parameters are its *params* (float/int with :class:`Range`, bool, ``Literal`` or
:class:`Choice` strings, :class:`Points`, :class:`File` paths, kernels as
``list[list[float]]``), each read into a :class:`~medview.pipeline.params.ParamSpec` whose
kind (:mod:`medview.pipeline.kinds`) validates, describes and parses its values;
``progress`` is passed by the runner. :func:`register` (or the :func:`step` decorator) reads
the signature once into a :class:`StepSpec`, from which the GUI form, the CLI, the chain JSON
schema and the server's validation are generated; the step's preview margin
(:mod:`medview.pipeline.margin`) and whether it may be split into slabs are declared there
too. Third-party steps come in through the ``medview.steps`` entry points; one that fails to
load is recorded (:func:`broken_plugins`) and the others load.
"""

from __future__ import annotations

import inspect
import re
import threading
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

from medview.core.labelmap import LabelMap
from medview.core.table import Table
from medview.core.volume import Volume
from medview.pipeline.margin import WHOLE, Margin
from medview.pipeline.params import ParamSpec, param_spec

__all__ = [
    "CATEGORIES",
    "BrokenPlugin",
    "StepSpec",
    "all_steps",
    "broken_plugins",
    "get_step",
    "register",
    "step",
]

CATEGORIES = ("Preprocess", "Enhance", "Features", "Segment", "Fuse")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


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
    #: what the preview needs around a slice: a Margin, or ``margin(params)`` → Margin;
    #: None: the whole volume (a slab's result approximates it)
    margin: Margin | Callable[[dict], Margin] | None = None
    #: peak memory the step needs beyond its inputs, in copies of its first input as float32
    #: (measured by benchmarks/steps.py); None: not declared (the runner assumes
    #: :data:`DEFAULT_MEMORY`)
    memory: float | None = None

    def preview_margin(self, params: dict) -> Margin:
        """The :class:`~medview.pipeline.margin.Margin` of this step with ``params``."""
        if self.margin is None:
            return WHOLE
        if isinstance(self.margin, Margin):
            return self.margin
        return self.margin({**self.defaults(), **params})

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


def register(func: Callable, *, id: str, version: int = 1, title: str, category: str,
             tags: tuple[str, ...] = (), replace: bool = False,
             halo: Callable[[dict, tuple], int | None] | None = None,
             margin: Margin | Callable[[dict], Margin] | None = None,
             memory: float | None = None) -> StepSpec:
    """Read ``func``'s signature into a StepSpec and add it to the registry.

    ``halo`` says whether (and with which halo) the step may be split into slabs along z on
    a Dask server (:mod:`medview.pipeline.split`); ``margin`` what the live preview needs
    around a slice (:mod:`medview.pipeline.margin`; None: the whole volume); ``memory`` the
    step's peak memory beyond its inputs in copies of its first input as float32 (what
    benchmarks/steps.py measures): the runner refuses, before starting, a run that would not
    fit in the memory available.

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
    if memory is not None and not (isinstance(memory, int | float) and memory >= 0):
        raise ValueError(f"step {id}: memory must be a number of volume copies >= 0, "
                         f"got {memory!r}")
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
            params.append(param_spec(p.name, tp, p.default, doc_help.get(p.name, "")))
    if not inputs:
        raise TypeError(f"step {id}: needs at least one data input")
    spec = StepSpec(id, version, title, category, func, doc, tuple(inputs), tuple(params),
                    _returns(hints.get("return")), takes_progress, tuple(tags), halo,
                    margin=margin, memory=None if memory is None else float(memory))
    _REGISTRY[id] = spec
    return spec


def step(id: str, *, version: int = 1, title: str, category: str, tags: tuple[str, ...] = (),
         **options):
    """Decorator form of :func:`register` (``options``: its other keywords, e.g. ``margin``,
    ``memory``); returns the function unchanged."""

    def deco(func: Callable) -> Callable:
        register(func, id=id, version=version, title=title, category=category, tags=tags,
                 **options)
        return func

    return deco


@dataclass(frozen=True)
class BrokenPlugin:
    """A ``medview.steps`` entry point that failed to load: its steps are unavailable."""

    name: str
    value: str  # "module:attr" as the distribution declares it
    error: str


_BROKEN: list[BrokenPlugin] = []


def _load_builtin_steps() -> None:
    from importlib.metadata import entry_points

    from medview.pipeline import steps  # noqa: F401  (registers on import)

    for ep in entry_points(group="medview.steps"):
        try:
            ep.load()
        except Exception as exc:
            # one broken plugin must not take the built-in steps (and the others) with it
            _BROKEN.append(BrokenPlugin(ep.name, ep.value, f"{type(exc).__name__}: {exc}"))
            import logging

            logging.getLogger(__name__).warning("step plugin %s (%s) failed to load: %s",
                                                ep.name, ep.value, _BROKEN[-1].error)


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


def broken_plugins() -> list[BrokenPlugin]:
    """The ``medview.steps`` plugins that failed to load, with the reason."""
    _ensure_loaded()
    return list(_BROKEN)


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
        if _BROKEN:
            hint += "; plugins that failed to load: " + ", ".join(
                f"{b.name} ({b.error})" for b in _BROKEN)
        raise KeyError(f"unknown step {id!r}{hint}") from None
