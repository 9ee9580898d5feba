"""Tabular variational autoencoder (SDV TVAESynthesizer), trained on the device the pipeline passes; `epochs` comes from
config (300 for quality, a few in tests)."""

from synth_pipeline.generators._sdv import TorchSDVGenerator
from synth_pipeline.generators.base import register


@register
class TVAEGenerator(TorchSDVGenerator):
    name = "tvae"
    summary = "SDV TVAE: tabular variational autoencoder (torch, GPU when available)"
    synthesizer = "TVAESynthesizer"
