"""Synthetic-data generators. Importing this package imports every module in it, so a new family is
one new module with a `@register`ed class: no other file changes."""

import importlib
import pkgutil

from synth_pipeline.generators.base import Generator, available, load_generator, make_generator, register

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "base":
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Generator", "available", "load_generator", "make_generator", "register"]
