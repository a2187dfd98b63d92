"""The application layer: what the user does (import, open, edit, process, export, send),
in plain Python without Qt. The widgets in :mod:`medview.gui` bind to its events and call
its methods; its tests run without a screen."""
