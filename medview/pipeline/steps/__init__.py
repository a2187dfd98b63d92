"""The built-in steps, one module per category; importing this registers them all."""

from importlib import import_module

for _name in ("preprocess", "enhance", "features", "segment", "classify", "fuse"):
    try:
        import_module(f"{__name__}.{_name}")
    except ModuleNotFoundError as exc:  # a category not written yet
        if exc.name != f"{__name__}.{_name}":
            raise
