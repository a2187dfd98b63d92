"""Tiny installed distributions with ``medview.steps`` entry points, for plugin tests.

:func:`make_plugins` writes, into a folder meant for ``sys.path``, two real distributions as
pip would install them (a package plus its ``.dist-info`` with METADATA and
``entry_points.txt``): ``medview-broken-plugin``, whose module raises on import, and
``medview-good-plugin``, which registers the step ``plugin.double``.
"""

from __future__ import annotations

from pathlib import Path

BROKEN_ERROR = "this plugin is broken on purpose"
GOOD_STEP = "plugin.double"


def _dist(folder: Path, name: str, module: str, source: str) -> None:
    (folder / module).mkdir()
    (folder / module / "__init__.py").write_text(source)
    info = folder / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[medview.steps]\n{module} = {module}\n")
    (info / "RECORD").write_text("")


def make_plugins(folder: Path) -> Path:
    """Write both distributions into ``folder``; returns it."""
    _dist(folder, "medview-broken-plugin", "medview_broken_plugin",
          f"raise RuntimeError({BROKEN_ERROR!r})\n")
    _dist(folder, "medview-good-plugin", "medview_good_plugin", f'''
from medview.core.volume import Volume
from medview.pipeline.registry import register


def double(volume: Volume) -> Volume:
    """Twice the values."""
    return volume.with_array(volume.array * 2)


register(double, id="{GOOD_STEP}", title="Double", category="Enhance")
''')
    return folder
