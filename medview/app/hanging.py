"""Layout rules (hanging protocols, in the simple sense), without Qt.

A :class:`LayoutRule` says, for series of a modality / body part / description pattern,
which layout a comparison takes, which series goes in which pane and which window preset
they open with. The rules are tried in order and the first that matches the series being
opened wins; a built-in set for CT and MR (:data:`BUILTIN_RULES`) is used until the reader
saves their own (JSON in the config folder, ``hanging_protocols.json``, written atomically).

Which series where — each pane's ``slot``:

- ``"current"``: the series being opened;
- ``"prior"``: the matching series of the newest other study of the patient (same
  description, else same body part, else same modality);
- ``"prior:PATTERN"``: the newest prior series whose description matches ``PATTERN``;
- ``"same:PATTERN"``: a series of the same study whose description matches ``PATTERN``
  (e.g. pre/post contrast).

Patterns are shell-style (``*``, ``?``), case-insensitive, several separated by ``|``.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from medview.app.windowing import CT_PRESETS
from medview.dicom.catalog.priors import SeriesFacts

__all__ = [
    "BUILTIN_RULES",
    "LAYOUT_SHAPES",
    "RULES_FILE",
    "WINDOWS",
    "LayoutRule",
    "assign_series",
    "load_rules",
    "matches",
    "pick_rule",
    "rules_path",
    "save_rules",
    "window_for",
]

#: Layouts and their (rows, columns).
LAYOUT_SHAPES = {"1x1": (1, 1), "1x2": (1, 2), "2x1": (2, 1), "2x2": (2, 2)}
#: The rules file in the config folder.
RULES_FILE = "hanging_protocols.json"
_PRESETS = {p.name.lower(): p for p in CT_PRESETS}
#: Windows a rule may name: a CT preset, "auto" (1–99 %) or "" (the series' own).
WINDOWS = ("", "auto", *_PRESETS)


def _patterns(text: str) -> list[str]:
    return [p.strip().lower() for p in str(text or "").split("|") if p.strip()]


def matches(pattern: str, value: str) -> bool:
    """True when ``value`` matches one of ``pattern``'s ``|``-separated shell patterns
    (case-insensitive); an empty pattern matches anything."""
    pats = _patterns(pattern)
    return not pats or any(fnmatch.fnmatchcase(str(value or "").lower(), p) for p in pats)


@dataclass(frozen=True)
class LayoutRule:
    """One hanging protocol; see the module's text.

    Raises
    ------
    ValueError
        On an unknown layout, slot or window, or more slots than the layout has panes.
    """

    name: str
    modality: str = ""
    body_part: str = ""
    description: str = ""
    layout: str = "1x2"
    slots: tuple[str, ...] = ("current", "prior")
    window: str = ""

    def __post_init__(self):
        if self.layout not in LAYOUT_SHAPES:
            raise ValueError(f"rule {self.name!r}: layout {self.layout!r} is not one of "
                             f"{tuple(LAYOUT_SHAPES)}")
        object.__setattr__(self, "slots", tuple(self.slots))
        rows, cols = LAYOUT_SHAPES[self.layout]
        if not self.slots or len(self.slots) > rows * cols:
            raise ValueError(f"rule {self.name!r}: {len(self.slots)} slots for a "
                             f"{self.layout} layout (1 to {rows * cols})")
        for slot in self.slots:
            kind = slot.split(":", 1)[0]
            if kind not in ("current", "prior", "same") or (kind == "same" and ":" not in slot):
                raise ValueError(f"rule {self.name!r}: slot {slot!r} is not current, prior, "
                                 "prior:PATTERN or same:PATTERN")
        if self.window.lower() not in WINDOWS:
            raise ValueError(f"rule {self.name!r}: window {self.window!r} is not one of "
                             f"{WINDOWS}")

    def matches(self, facts: SeriesFacts) -> bool:
        """True when ``facts`` (the series being opened) fit this rule."""
        return (matches(self.modality, facts.modality)
                and matches(self.body_part, facts.body_part)
                and matches(self.description, facts.description))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["slots"] = list(self.slots)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LayoutRule:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"rule {d.get('name')!r}: unknown fields {sorted(unknown)}")
        return cls(**{k: (tuple(v) if k == "slots" else str(v)) for k, v in d.items()})


#: The built-in set: CT by body part with its preset, MR brain with T2/FLAIR of the study.
BUILTIN_RULES: tuple[LayoutRule, ...] = (
    LayoutRule("CT head", "CT", "head|brain|skull", "", "1x2", ("current", "prior"), "brain"),
    LayoutRule("CT chest", "CT", "chest|lung|thorax", "", "1x2", ("current", "prior"), "lung"),
    LayoutRule("CT abdomen", "CT", "abdomen|pelvis|liver|kidney", "", "1x2",
               ("current", "prior"), "abdomen"),
    LayoutRule("CT", "CT", "", "", "1x2", ("current", "prior"), ""),
    LayoutRule("MR brain", "MR", "head|brain", "", "2x2",
               ("current", "prior", "same:*t2*", "same:*flair*"), "auto"),
    LayoutRule("MR", "MR", "", "", "1x2", ("current", "prior"), "auto"),
)


def pick_rule(rules: Sequence[LayoutRule], facts: SeriesFacts) -> LayoutRule | None:
    """The first of ``rules`` that matches the series ``facts`` (None: no rule)."""
    return next((r for r in rules if r.matches(facts)), None)


def _best_prior(current: SeriesFacts, candidates: list[SeriesFacts]) -> SeriesFacts | None:
    def score(f: SeriesFacts) -> tuple:
        return (f.modality == current.modality,
                f.description.lower() == current.description.lower(),
                bool(f.body_part) and f.body_part.lower() == current.body_part.lower(),
                f.instances)
    good = [f for f in candidates if f.modality == current.modality]
    return max(good, key=score) if good else None


def assign_series(rule: LayoutRule, current: SeriesFacts,
                  others: Sequence[SeriesFacts]) -> list[SeriesFacts | None]:
    """Which series goes in each of ``rule``'s slots: ``current`` is the series being
    opened, ``others`` the patient's other series (:func:`medview.dicom.catalog.priors
    .patient_series`); None where nothing fits (the pane stays empty). A series is used once.
    """
    used = {current.uid}
    priors = [f for f in others if f.study_uid != current.study_uid and f.uid not in used]
    # the newest prior study first (others come newest first)
    newest = priors[0].study_uid if priors else ""
    out: list[SeriesFacts | None] = []
    for slot in rule.slots:
        kind, _, pattern = slot.partition(":")
        chosen = None
        if kind == "current":
            chosen = current
        elif kind == "prior" and not pattern:
            chosen = _best_prior(current, [f for f in priors if f.study_uid == newest
                                           and f.uid not in used])
        elif kind == "prior":
            chosen = next((f for f in priors if f.uid not in used
                           and matches(pattern, f.description)), None)
        else:  # same study
            chosen = next((f for f in others if f.study_uid == current.study_uid
                           and f.uid not in used and matches(pattern, f.description)), None)
        if chosen is not None:
            used.add(chosen.uid)
        out.append(chosen)
    return out


def window_for(rule: LayoutRule, modality: str) -> tuple[float, float] | str | None:
    """The window ``rule`` opens with: ``(center, width)`` of a CT preset (on CT only),
    ``"auto"``, or None (the series' own)."""
    name = rule.window.lower()
    if name == "auto":
        return "auto"
    preset = _PRESETS.get(name)
    if preset is not None and modality.upper() == "CT":
        return float(preset.center), float(preset.width)
    return None


# -- the saved rules -------------------------------------------------------------------
def rules_path() -> Path:
    from medview.userconfig import config_dir

    return config_dir() / RULES_FILE


def load_rules(path: Path | None = None) -> list[LayoutRule]:
    """The reader's rules (the built-in set while none are saved).

    Raises
    ------
    ValueError
        Naming the file and the reason, when it is not a valid rules file.
    """
    path = rules_path() if path is None else Path(path)
    if not path.exists():
        return list(BUILTIN_RULES)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or not isinstance(data.get("rules"), list):
            raise ValueError("expected an object with a list 'rules'")
        return [LayoutRule.from_dict(d) for d in data["rules"]]
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{path}: not a valid layout rules file: {exc}") from exc


def save_rules(rules: Sequence[LayoutRule], path: Path | None = None) -> Path:
    """Write ``rules`` (atomically: the old file or the new one, never half) and return
    the path."""
    from medview.atomic import write_text_atomic

    path = rules_path() if path is None else Path(path)
    text = json.dumps({"version": 1, "rules": [r.to_dict() for r in rules]}, indent=2)
    return write_text_atomic(path, text + "\n", parents=True)
