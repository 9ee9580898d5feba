"""Slice generators. Every module in this package is imported here, so `@register` on a class is all
a new model needs (see base.py)."""

import importlib
import pkgutil

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_") and _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")
