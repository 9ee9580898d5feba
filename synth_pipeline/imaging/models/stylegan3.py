"""StyleGAN3-style slice generators: our compact alias-free generator (`_stylegan3_nets.py`: mapping
network, Fourier-feature input with a w-driven rotation/translation, modulated convolutions with
demodulation, binomial-filtered leaky ReLUs) against the R3GAN discriminator and objective of gan.py
(relativistic pairing loss + R1 + R2, the DCGAN-shaped critic without normalisation).

- `stylegan3_stacked`: on 3-slice channel stacks like r3gan_stacked (unconditional).
- `stylegan3_positional`: the same, conditioned on the slice position (generator: a position
  embedding concatenated to the normalised z before the mapping network, so it enters w;
  discriminator: the projection term of r3gan_positional).
Budgets, training loop, sampling, saving and loading are TorchGAN's (GAN_BUDGETS; `steps=` / `width=`).
"""

from typing import Any

from synth_pipeline.imaging.models.base import register
from synth_pipeline.imaging.models.gan import POS_DIM, R3GANBase


class StyleGAN3Base(R3GANBase):
    def _nets(self, size: int) -> tuple[Any, Any]:
        from synth_pipeline.imaging.models._gan_nets import Discriminator
        from synth_pipeline.imaging.models._stylegan3_nets import StyleGenerator

        spec, pos = self.spec, POS_DIM if self.conditional else 0
        g = StyleGenerator(size, self.channels, spec.width, spec.z_dim, pos)
        return g, Discriminator(size, self.channels, spec.width, self.d_norm, pos)


@register
class StyleGAN3Stacked(StyleGAN3Base):
    name = "stylegan3_stacked"
    summary = "StyleGAN3-style alias-free generator, R3GAN objective, on 3-slice channel stacks (unconditional)"


@register
class StyleGAN3Positional(StyleGAN3Base):
    name = "stylegan3_positional"
    summary = "StyleGAN3-style alias-free generator, R3GAN objective, 3-slice stacks, conditioned on position"
    conditional = True
