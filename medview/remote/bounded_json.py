"""JSON from a peer, bounded: at most so many bytes and so many levels of nesting.

``json.loads`` recurses once per level, so a request of ``[[[[…]]]]`` ends in a RecursionError
(HTTP 500 on a server that does not expect it), and a JSON integer of millions of digits raises
a plain ValueError; :func:`loads_bounded` turns all of these into one :class:`JSONLimitError`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["MAX_JSON_DEPTH", "JSONLimitError", "json_depth", "loads_bounded"]

#: the deepest nesting of lists/objects accepted (a chain's is about 6)
MAX_JSON_DEPTH = 32


class JSONLimitError(ValueError):
    """JSON that is too large, too deep, or not JSON."""


def json_depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (a scalar is 0, ``[]`` 1)."""
    depth, level = 0, [value]
    while True:
        containers = [v for v in level if isinstance(v, dict | list)]
        if not containers:
            return depth
        depth += 1
        level = [c for v in containers for c in (v.values() if isinstance(v, dict) else v)]


def loads_bounded(raw: bytes, what: str, *, max_bytes: int,
                  max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``json.loads`` that refuses more than ``max_bytes`` or ``max_depth`` levels.

    Raises
    ------
    JSONLimitError
        Naming ``what``, the limit and the reason (never a RecursionError).
    """
    if len(raw) > max_bytes:
        raise JSONLimitError(f"{what} of {len(raw)} bytes exceeds the limit of {max_bytes} bytes")
    try:
        value = json.loads(raw)
    except RecursionError:
        raise JSONLimitError(f"{what} is nested deeper than {max_depth} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError, huge int literals
        raise JSONLimitError(f"{what} is not JSON ({exc})") from None
    if json_depth(value) > max_depth:
        raise JSONLimitError(f"{what} is nested deeper than {max_depth} levels")
    return value
