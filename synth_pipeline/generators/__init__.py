"""Synthetic-data generators: importing this package registers every family by name."""

from synth_pipeline.generators import autoencoder, controls, copula, gan, resampling
from synth_pipeline.generators.base import Generator, available, load_generator, make_generator, register

__all__ = [
    "Generator",
    "autoencoder",
    "available",
    "controls",
    "copula",
    "gan",
    "load_generator",
    "make_generator",
    "register",
    "resampling",
]
