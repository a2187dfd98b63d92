"""The workstation window (PySide6 + pyqtgraph). Everything Qt in medview lives here.

What the widgets show (:mod:`medview.app.state` and its models, :mod:`medview.app.library`
…) is plain Python in :mod:`medview.app`, testable without a screen; the widgets bind to it.
What stays here without importing Qt is about drawing: the text around the image
(:mod:`medview.gui.overlays`), colour lookup tables for the image items
(:mod:`medview.gui.colormaps`) and the HTML of step help (:mod:`medview.gui.dochtml`).
"""
