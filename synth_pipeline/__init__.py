"""synth-pipeline: gated, audited synthetic releases of sensitive medical tables.

In a notebook::

    import synth_pipeline as sp
    result = sp.release(df, target="death", generator="gaussian_copula", out="releases", name="mytable")
    scores = sp.evaluate(train=train, holdout=holdout, synthetic=synthetic, target="death")

`release` and `evaluate` (synth_pipeline.api) run the same Dagster graph and gates as the CLI and
return frozen dataclasses. Nothing heavy is imported until one of them is used.
"""

__version__ = "0.1.0"
__all__ = ["EvaluationResult", "ReleaseResult", "__version__", "evaluate", "release"]

_API = {"EvaluationResult", "ReleaseResult", "evaluate", "release"}


def __getattr__(name: str):
    if name in _API:
        from synth_pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'synth_pipeline' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
