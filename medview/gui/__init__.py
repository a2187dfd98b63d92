"""The workstation window (PySide6 + pyqtgraph). Everything Qt in medview lives here.

The state the widgets show (:mod:`medview.gui.state`, :mod:`medview.gui.windowing`,
:mod:`medview.gui.overlays`, :mod:`medview.gui.library`) is plain Python and imports no Qt,
so it is testable without a screen; the widgets bind to it.
"""
