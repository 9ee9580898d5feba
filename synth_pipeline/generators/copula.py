"""Gaussian copula (SDV GaussianCopulaSynthesizer): the default — fast, stable, and it passed every gate
on the reference tables. Marginals are fitted per column, dependence through a Gaussian copula."""

from synth_pipeline.generators._sdv import SDVGenerator
from synth_pipeline.generators.base import register


@register
class GaussianCopulaGenerator(SDVGenerator):
    name = "gaussian_copula"
    summary = "SDV Gaussian copula: per-column marginals joined by a Gaussian copula (default)"
    synthesizer = "GaussianCopulaSynthesizer"

    def __init__(self, default_distribution: str = "beta") -> None:
        super().__init__(default_distribution=default_distribution)
