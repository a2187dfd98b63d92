"""Header layouts: the files of a series read with one ``struct`` call each.

The files of one series nearly always share their header's layout byte for byte: the same
elements in the same order with the same lengths; only values differ (UIDs, positions,
numbers). The first file of a layout is parsed element by element
(:class:`~medview.dicom.scan._fastparse._FastParser`), which records every byte span the parse
depended on (element and item headers, the transfer syntax, Image Type) and every value it
kept. That recording becomes a :class:`Layout`: one compiled :class:`struct.Struct` that
cuts all those spans out of the next file's first bytes in one C call. When the spans the
parse depended on are identical, the walk would have gone exactly the same way, so the kept
values are taken from their spans without walking: the same raw tree, for a fraction of the
cost. Anything different (one length, one tag) is a miss and the file is parsed in full.

Only Part 10 files with native (defined-length) pixel data get a layout; the pixel element
must still fit in the file, else the full parse reports the truncation.
"""

from __future__ import annotations

import operator
import struct

CMP = 0  # a span the walk depended on: must be identical
VAL = 1  # a value kept in the raw tree

MAX_LAYOUTS = 8  # layouts remembered per process (series being read side by side)
MAX_END = 256 * 1024  # headers longer than this are parsed element by element


def _getter(indices: list[int]):
    """A C-speed getter of ``indices`` that always returns a tuple."""
    if not indices:
        return lambda values: ()
    if len(indices) == 1:
        i = indices[0]
        return lambda values: (values[i],)
    return operator.itemgetter(*indices)


def _shape(tree: dict) -> tuple:
    """The tree without its values: ((key, vr, None) | (key, None, (item shapes…)), …)."""
    return tuple(
        (key, None, tuple(_shape(item) for item in value)) if isinstance(value, list)
        else (key, value[0], None)
        for key, value in tree.items()
    )


def _leaves(tree: dict, out: list) -> list:
    for value in tree.values():
        if isinstance(value, list):
            for item in value:
                _leaves(item, out)
        else:
            out.append(value[1])
    return out


def _rebuild(shape: tuple, it) -> dict:
    out = {}
    for key, vr, items in shape:
        if items is None:
            out[key] = (vr, next(it))
        else:
            out[key] = [_rebuild(s, it) for s in items]
    return out


class Layout:
    """One header layout; see the module docstring."""

    __slots__ = ("_cmp", "_expected", "_flat", "_meta", "_tree", "_unpack", "_val", "end",
                 "pixel")

    def __init__(self, unpack, cmp_get, expected, val_get, meta_shape, tree_shape, pixel,
                 end):
        self._unpack = unpack
        self._cmp = cmp_get
        self._expected = expected
        self._val = val_get
        self._meta = meta_shape
        self._tree = tree_shape
        # a tree without sequences (most images) is rebuilt with one zip
        flat = all(items is None for _, _, items in tree_shape)
        self._flat = (tuple(k for k, _, _ in tree_shape), tuple(vr for _, vr, _ in tree_shape)
                      ) if flat else None
        self.pixel = pixel
        self.end = end

    def match(self, head: bytes, size: int) -> tuple[dict, dict, tuple] | None:
        """(meta, tree, pixel) of the file whose first bytes are ``head``, or None."""
        if len(head) < self.end:
            return None
        values = self._unpack(head)
        if self._cmp(values) != self._expected:
            return None
        _tag, vpos, length = self.pixel
        if length > size - vpos:
            return None  # truncated: the full parse says so
        kept = self._val(values)
        n_meta = len(self._meta)
        meta = {key: (vr, v) for (key, vr, _), v in zip(self._meta, kept, strict=False)}
        if self._flat is not None:
            keys, vrs = self._flat
            tree = dict(zip(keys, zip(vrs, kept[n_meta:], strict=True), strict=True))
        else:
            tree = _rebuild(self._tree, iter(kept[n_meta:]))
        return meta, tree, self.pixel


def make_layout(rec: list, head: bytes, meta: dict, tree: dict, pixel) -> Layout | None:
    """A :class:`Layout` from a recorded parse, or None when the file does not suit one.

    ``head`` holds the file's first bytes (at least up to the pixel data element's value).
    """
    if pixel is None or pixel[2] == 0xFFFFFFFF:
        return None
    if any(isinstance(v, list) for v in meta.values()):
        return None
    spans: dict[tuple[int, int], int] = {(128, 4): 0}  # (pos, length) -> struct field
    compared: list[tuple[int, int]] = [(128, 4)]  # "DICM"
    kept: list[tuple[int, int]] = []  # in the order the parse kept them: the tree's order
    for pos, n, kind in rec:
        spans.setdefault((pos, n), 0)
        (compared if kind == CMP else kept).append((pos, n))
    meta_leaves = _leaves(meta, [])
    tree_leaves = _leaves(tree, [])
    if len(kept) != len(meta_leaves) + len(tree_leaves):
        return None
    fmt, at, end = ["<"], 0, 0
    for i, (pos, n) in enumerate(sorted(spans)):
        if pos < at:
            return None  # overlapping spans: leave it to the parser
        fmt.append(f"{pos - at}x{n}s" if pos > at else f"{n}s")
        spans[(pos, n)] = i
        at = end = pos + n
    if end > MAX_END or end > len(head):
        return None
    unpack = struct.Struct("".join(fmt)).unpack_from
    values = unpack(head)
    cmp_get = _getter([spans[s] for s in compared])
    val_get = _getter([spans[s] for s in kept])
    # the recording must give back the very tree it was made from, or it is not used
    if list(val_get(values)) != meta_leaves + tree_leaves:
        return None
    layout = Layout(unpack, cmp_get, cmp_get(values), val_get, _shape(meta), _shape(tree),
                    pixel, end)
    return layout if layout.match(head, end + pixel[2]) is not None else None


_LAYOUTS: list[Layout] = []


def find(head: bytes, size: int) -> tuple[dict, dict, tuple] | None:
    """The raw trees of a file from a remembered layout, or None."""
    for i, layout in enumerate(list(_LAYOUTS)):
        got = layout.match(head, size)
        if got is not None:
            if i and i < len(_LAYOUTS):
                _LAYOUTS[0], _LAYOUTS[i] = _LAYOUTS[i], _LAYOUTS[0]  # most recent first
            return got
    return None


def longest() -> int:
    """The bytes a file must offer to be matched against every remembered layout."""
    return max((layout.end for layout in list(_LAYOUTS)), default=0)


def remember(layout: Layout) -> None:
    _LAYOUTS.insert(0, layout)
    del _LAYOUTS[MAX_LAYOUTS:]


def forget_all() -> None:
    """Drop the remembered layouts (tests)."""
    _LAYOUTS.clear()
