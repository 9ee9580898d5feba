"""synth-pipeline: gated, audited synthetic releases of sensitive medical tables.

In a notebook::

    import synth_pipeline as sp
    result = sp.release(df, target="death", generator="gaussian_copula", out="releases", name="mytable")
    scores = sp.evaluate(train=train, holdout=holdout, synthetic=synthetic, target="death")

`release` and `evaluate` (synth_pipeline.api) run the same Dagster graph and gates as the CLI and
return frozen dataclasses. Nothing heavy is imported until one of them is used.

`synth_pipeline.release` is also the name of the core release module (publish, audit, ...): the
module itself is made callable, and calling it is `synth_pipeline.api.release`.
"""

import sys as _sys
import types

__version__ = "0.1.0"
__all__ = ["EvaluationResult", "ReleaseResult", "__version__", "evaluate", "release"]

_API = {"EvaluationResult", "ReleaseResult", "evaluate"}


class _ReleaseModule(types.ModuleType):
    """synth_pipeline.release, callable: `sp.release(df, target=..., ...)` is synth_pipeline.api.release."""

    def __call__(self, df, **kwargs):
        """See synth_pipeline.api.release."""
        from synth_pipeline.api import release

        return release(df, **kwargs)


class _Package(types.ModuleType):
    def __setattr__(self, name: str, value) -> None:
        # the import system binds each submodule here: make the `release` module callable as it arrives
        if name == "release" and isinstance(value, types.ModuleType) and type(value) is types.ModuleType:
            value.__class__ = _ReleaseModule
        super().__setattr__(name, value)


def __getattr__(name: str):
    if name == "release":
        import importlib

        return importlib.import_module("synth_pipeline.release")
    if name in _API:
        from synth_pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'synth_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


_sys.modules[__name__].__class__ = _Package
