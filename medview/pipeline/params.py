"""A step's parameters: name, kind, default and help, read once from the function's signature.

:func:`param_spec` turns one keyword parameter's annotation (``float`` with
:class:`~medview.core.params.Range`, ``bool``, ``Literal`` …, see :mod:`medview.core.params`)
into a :class:`ParamSpec` holding its kind (:mod:`medview.pipeline.kinds`), which does the
validating, describing and parsing.
"""

from __future__ import annotations

import copy
import inspect
import types
import typing
from dataclasses import dataclass
from typing import Annotated, Any, Literal, get_args, get_origin

from medview.core.params import Choice as ChoiceMeta
from medview.core.params import File as FileMeta
from medview.core.params import Help, Range
from medview.core.params import Points as PointsMeta
from medview.pipeline.kinds import (
    Bool,
    Choice,
    File,
    Float,
    Int,
    Kernel,
    Kind,
    Numbers,
    Points,
    Text,
)

__all__ = ["ParamError", "ParamSpec", "param_spec"]


class ParamError(ValueError):
    """A parameter value its kind refuses: ``param`` names it, ``value`` is what was given."""

    def __init__(self, message: str, *, param: str, value: Any):
        super().__init__(message)
        self.param = param
        self.value = value


def _with_value(reason: str, value: Any) -> str:
    """``reason``, ending with the value given when the reason does not show it already."""
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return reason if repr(value) in reason or str(value) in reason else f"{reason} (got {shown})"


def _from_kind(attr: str, default: Any = None) -> property:
    # the kind's own setting, for readers that ask every parameter (e.g. p.unit, p.choices)
    return property(lambda self: getattr(self.type, attr, default),
                    doc=f"The kind's ``{attr}`` ({default!r} for kinds without one).")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter of a step, as the GUI, CLI, schema and server see it.

    ``type`` is its :class:`~medview.pipeline.kinds.Kind` (bounds, choices, point counts …
    live there); ``kind`` is the kind's name (``"float"``, ``"file"`` …).
    """

    name: str
    type: Kind
    default: Any = None
    required: bool = False
    optional: bool = False  # None allowed
    help: str = ""

    min = _from_kind("min")
    max = _from_kind("max")
    step = _from_kind("step")
    unit = _from_kind("unit", "")
    choices = _from_kind("choices", ())
    min_count = _from_kind("min_count", 0)
    max_count = _from_kind("max_count")

    @property
    def kind(self) -> str:
        return self.type.name

    def json_schema(self) -> dict:
        s = self.type.schema()
        if self.optional:
            s = {"anyOf": [s, {"type": "null"}]}
        if not self.required:
            s["default"] = self.default
        if self.help:
            s["description"] = self.help + (f" [{self.unit}]" if self.unit else "")
        return s

    def validate(self, value: Any) -> Any:
        """The value converted to the parameter's kind.

        Raises
        ------
        ParamError
            (a ValueError) saying what is wrong with the value; ``.param`` names the
            parameter, ``.value`` holds the value.
        """
        if value is None:
            if self.optional:
                return None
            raise ParamError("must not be null", param=self.name, value=value)
        try:
            return self.type.check(value)
        except ValueError as exc:
            raise ParamError(_with_value(str(exc), value), param=self.name,
                             value=value) from None

    def parse(self, text: str) -> Any:
        """A validated value from command-line text ("none" or "" for an optional one)."""
        if self.optional and text.strip().lower() in ("", "none", "null"):
            return None
        try:
            value = self.type.parse(text)
        except ValueError as exc:
            raise ParamError(_with_value(str(exc), text), param=self.name, value=text) from None
        try:
            return self.validate(value)
        except ParamError as exc:  # say what was typed, not only what it was read as
            raise ParamError(_with_value(str(exc), text), param=self.name, value=text) \
                from None

    def placeholder(self) -> Any:
        """What a new step starts with: the default, or the kind's empty value for a required
        parameter (which a chain check reports until the user fills it)."""
        return copy.deepcopy(self.default) if not self.required else self.type.empty()


def _param_kind(name: str, tp, meta: list, default) -> tuple[Kind, Any]:
    """The kind of a parameter annotated ``tp`` (with ``Annotated`` metadata ``meta``), and
    its default as that kind holds it."""
    rng = next((m for m in meta if isinstance(m, Range)), None)
    bounds = {} if rng is None else {"min": rng.min, "max": rng.max, "step": rng.step,
                                     "unit": rng.unit}
    file = next((m for m in meta if isinstance(m, FileMeta)), None)
    if file is not None:
        return File(suffixes=tuple(file.suffixes)), default
    points = next((m for m in meta if isinstance(m, PointsMeta)), None)
    if points is not None:
        return Points(min_count=points.min_count, max_count=points.max_count), default
    if get_origin(tp) is Literal:
        return Choice(choices=tuple(str(a) for a in get_args(tp))), default
    choice = next((m for m in meta if isinstance(m, ChoiceMeta)), None)
    if choice is not None:
        return Choice(choices=tuple(choice.values)), default
    scalar = {bool: Bool, int: Int, float: Float, str: Text}.get(tp)
    if scalar in (Int, Float):
        return scalar(**bounds), default
    if scalar is not None:
        return scalar(), default
    if get_origin(tp) in (list, tuple):
        args = get_args(tp)
        if args and args[0] in (float, int):  # list[float]: a list of numbers
            listed = [float(v) for v in default] if default is not None else None
            return Numbers(**bounds), listed
        return Kernel(), default
    raise TypeError(f"parameter {name!r}: unsupported annotation {tp!r}")


def param_spec(name: str, tp, default, doc_help: str = "") -> ParamSpec:
    """The ParamSpec of keyword parameter ``name`` annotated ``tp`` with ``default``
    (``inspect.Parameter.empty``: required); ``doc_help`` is its docstring line.

    Raises
    ------
    TypeError
        On an annotation no kind fits.
    """
    meta: list = []
    if get_origin(tp) is Annotated:
        tp, *meta = get_args(tp)
    optional = False
    if get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        optional = len(args) != len(get_args(tp))
        tp = args[0] if len(args) == 1 else tp
    help_ = next((m.text for m in meta if isinstance(m, Help)), doc_help)
    required = default is inspect.Parameter.empty
    kind, default = _param_kind(name, tp, meta, None if required else default)
    return ParamSpec(name, kind, default, required, optional, help_)
