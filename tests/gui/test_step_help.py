"""The chain panel's step help: numpydoc rendered as formatted text, never raw reST."""

from __future__ import annotations

import pytest
from viewer_helpers import dock_session

from medview.app.layers import LayerList
from medview.app.state import ViewerState
from medview.gui.chain_panel import ChainPanel
from medview.gui.dochtml import docstring_html, docstring_summary
from medview.gui.tasks import TaskRunner
from medview.pipeline.registry import all_steps

RAW = ("----------", "``", ":func:", ":class:", ":meth:", "`")


def test_a_numpydoc_docstring_renders_sections_literals_and_parameters():
    doc = """Smooth with ``sigma_mm``; see :func:`~medview.core.filters.smoothing.gaussian`.

    Notes on *why*: **fast**.

    - one
    - two

    Parameters
    ----------
    volume : Volume
        Scalar, shape (z, y, x).
    sigma_mm : float
        Width in mm; ``0`` copies.

    Returns
    -------
    Volume
        Same grid.
    """
    out = docstring_html(doc, title="Gaussian")
    assert "<code>sigma_mm</code>" in out and "<code>gaussian</code>" in out
    assert "<h4>Parameters</h4>" in out and "<h4>Returns</h4>" in out
    assert "<dt><b>sigma_mm</b> : <i>float</i></dt>" in out
    assert "<li>one</li><li>two</li>" in out and "<i>why</i>" in out and "<b>fast</b>" in out
    assert not any(raw in out for raw in RAW)
    assert docstring_summary(doc) == "Smooth with sigma_mm; see gaussian."


@pytest.fixture
def panel(app, qtbot):
    tasks = TaskRunner()
    session = dock_session(tasks)
    p = ChainPanel(ViewerState(), LayerList(), session)
    qtbot.addWidget(p)
    yield p
    assert session.close(timeout=10)


@pytest.mark.parametrize("spec", all_steps(), ids=lambda s: s.id)
def test_every_steps_help_is_formatted_text(panel, spec):
    panel.add_step(spec.id)
    shown = panel.help_view.toPlainText()
    assert shown.startswith(f"{spec.title} ({spec.id}, v{spec.version})")
    assert not any(raw in shown for raw in RAW), [r for r in RAW if r in shown]
    if "Parameters\n" in spec.doc:
        html = panel.help_view.toHtml()
        assert "Parameters" in shown and "font-weight" in html  # a heading, names in bold
        for p in spec.params:
            if f"\n{p.name} :" in spec.doc:
                assert p.name in shown
    tip = spec.title and docstring_summary(spec.doc)
    assert tip and not any(raw in tip for raw in RAW)
