"""Conditional tabular GAN (SDV CTGANSynthesizer): mode-specific normalisation plus a conditional
generator, trained on pick_device(); `epochs` comes from config (300 for quality, a few in tests)."""

from synth_pipeline.generators._sdv import TorchSDVGenerator
from synth_pipeline.generators.base import register


@register
class CTGANGenerator(TorchSDVGenerator):
    name = "ctgan"
    summary = "SDV CTGAN: conditional tabular GAN (torch, GPU when available)"
    synthesizer = "CTGANSynthesizer"
