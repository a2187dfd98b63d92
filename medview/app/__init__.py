"""The application without Qt: what the viewer shows and what the user does with it.

The viewer's evented models (:mod:`medview.app.models`: crosshair and zoom, window, tools,
fusion, preview) and the :class:`~medview.app.state.ViewerState` that composes them, the
layers of a series, label editing with undo, measurements, the library of open series, the
chain model and its preview, loading, caching, recovery of unsaved work. Nothing here imports
PySide6, pyqtgraph, :mod:`medview.gui` or :mod:`medview.server` (an import-linter contract
says so), so all of it is tested in the headless environment; the widgets in
:mod:`medview.gui` bind to these models and call their methods.
"""
