"""MRI GANs (imaging/models/gan.py, stylegan3.py, gan3d.py) on synthetic slices: discs whose radius grows with the
slice position, so a position-conditioned model has something real to learn. Tiny budgets only."""

import math

import numpy as np
import pytest
import torch

from synth_pipeline.errors import GeneratorError
from synth_pipeline.imaging.models._gan_nets import grad_sq_norm, r3gan_d_loss, wgan_gp_d_loss
from synth_pipeline.imaging.models.base import (available_image_generators, load_image_generator,
                                                 make_image_generator)
from synth_pipeline.imaging.slices import SliceSet

GANS = ("dcgan", "wgan_gp", "r3gan_stacked", "r3gan_positional", "stylegan3_stacked", "stylegan3_positional",
        "r3gan_3d")
STACKED = {"r3gan_stacked", "r3gan_positional", "stylegan3_stacked", "stylegan3_positional"}  # 3-slice stacks
SIZE = 32


def disc_slices(subjects: int = 6, per_subject: int = 20, size: int = SIZE, seed: int = 0) -> SliceSet:
    """Per subject, `per_subject` consecutive slices: a bright disc (radius 0.2 -> 0.8 of the half
    width from position 0 to 1) on a -1 background, plus a little noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / (size - 1) * 2 - 1
    images, position, subject, index = [], [], [], []
    for s in range(subjects):
        for i in range(per_subject):
            p = i / (per_subject - 1)
            disc = np.where(xx ** 2 + yy ** 2 < (0.2 + 0.6 * p) ** 2, 0.8, -1.0)
            images.append(np.clip(disc + rng.normal(0, 0.05, disc.shape), -1, 1))
            position.append(p)
            subject.append(f"sub-{s}")
            index.append(i)
    return SliceSet(np.asarray(images, np.float32)[:, None], np.asarray(position, np.float32),
                    np.asarray(subject), np.asarray(index))


@pytest.fixture(scope="module")
def slices() -> SliceSet:
    return disc_slices()


@pytest.fixture(scope="module")
def fitted(slices):
    torch.set_num_threads(1)
    out = {}
    for name in GANS:
        gen = make_image_generator(name, budget="tiny")
        gen.fit(slices, seed=0)
        out[name] = gen
    return out


def test_registered_with_conditioning_flag():
    assert set(GANS) <= set(available_image_generators())
    assert [make_image_generator(n).conditional for n in GANS] == [False, False, False, True, False, True, True]


@pytest.mark.parametrize("name", GANS)
def test_fit_and_sample_shape_range(fitted, name):
    gen = fitted[name]
    raw = gen._sample(np.linspace(0, 1, 10, dtype=np.float32), seed=3)  # before sample()'s clipping
    assert raw.shape == (10, 1, SIZE, SIZE)
    assert raw.min() >= -1 and raw.max() <= 1
    assert raw.std() > 0.05  # not a constant image
    assert len(gen.history) >= 1 and all(math.isfinite(v) for v in gen.history[-1].values())
    assert gen.modules["generator"].head.out_channels == (3 if name in STACKED else 1)


@pytest.mark.parametrize("name", GANS)
def test_sampling_is_seeded(fitted, name):
    gen, pos = fitted[name], np.linspace(0, 1, 6)
    a, b, c = gen.sample(pos, seed=7), gen.sample(pos, seed=7), gen.sample(pos, seed=8)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3


@pytest.mark.parametrize("name", GANS)
def test_fit_is_deterministic(fitted, slices, name):
    again = make_image_generator(name, budget="tiny")
    again.fit(slices, seed=0)
    for part in ("generator", "discriminator"):
        first, second = fitted[name].modules[part].state_dict(), again.modules[part].state_dict()
        assert first.keys() == second.keys()
        assert all(torch.equal(first[k], second[k]) for k in first)
    np.testing.assert_array_equal(fitted[name].sample(np.ones(4), seed=1), again.sample(np.ones(4), seed=1))


@pytest.mark.parametrize("name", GANS)
def test_save_load_round_trip(fitted, name, tmp_path):
    pos = np.linspace(0, 1, 5)
    fitted[name].save(tmp_path)
    loaded = load_image_generator(tmp_path)
    assert type(loaded) is type(fitted[name]) and loaded.size == SIZE
    np.testing.assert_array_equal(loaded.sample(pos, seed=2), fitted[name].sample(pos, seed=2))


def test_fit_resumes_from_checkpoint(slices, tmp_path):
    first = make_image_generator("r3gan_positional", budget="tiny")
    first.fit(slices, seed=4, checkpoint_dir=tmp_path)
    resumed = make_image_generator("r3gan_positional", budget="tiny")
    resumed.fit(slices, seed=4, checkpoint_dir=tmp_path)  # every epoch is done: loads, trains none
    np.testing.assert_array_equal(first.sample(np.ones(3), seed=0), resumed.sample(np.ones(3), seed=0))
    assert resumed.history == first.history


def test_size_must_be_power_of_two():
    gen = make_image_generator("dcgan", budget="tiny")
    for size in (8, 24):
        with pytest.raises(GeneratorError, match="power of two"):
            gen.fit(disc_slices(subjects=1, per_subject=4, size=size), seed=0)


def test_r3gan_positional_follows_position(slices):
    """Trained on discs that grow with position, samples at position 0.9 must be much brighter than at
    0.1: at least half of the real gap in bright-pixel fraction (real: ~0.05 vs ~0.40; a model that
    ignores the position has a gap ~0). Checked at seeds 0, 1, 2: gaps 0.32, 0.28, 0.34."""
    torch.set_num_threads(1)
    gen = make_image_generator("r3gan_positional", budget="tiny", steps=250)
    gen.fit(slices, seed=0)

    def bright(images):
        return float((images > 0).mean())

    real_gap = bright(slices.images[slices.position > 0.85]) - bright(slices.images[slices.position < 0.15])
    low, high = bright(gen.sample(np.full(64, 0.1), seed=5)), bright(gen.sample(np.full(64, 0.9), seed=5))
    assert high - low > 0.5 * real_gap, (low, high, real_gap)


# ---- known answers for the penalties ---------------------------------------------------------------


def test_r1_r2_zero_for_constant_critic():
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    for critic in (lambda x: torch.full((len(x),), 2.0), lambda x: 0 * x.flatten(1).sum(1) + 2.0):
        loss, logs = r3gan_d_loss(critic, real, fake, gamma=1.0)
        assert logs["r1"] == 0 and logs["r2"] == 0
        assert logs["d"] == pytest.approx(math.log(2))  # softplus(0): the pair is indistinguishable
        assert loss.item() == pytest.approx(math.log(2))


def test_r1_r2_for_linear_critic():
    """D(x) = <w, x> has gradient w everywhere: R1 = R2 = gamma/2 ||w||^2, and the pairing loss is
    mean softplus(-(D(real) - D(fake)))."""
    gen = torch.Generator().manual_seed(0)
    w, real, fake = (torch.randn(n, 1, 16, 16, generator=gen) for n in (1, 8, 8))

    def critic(x):
        return (w * x).flatten(1).sum(1)

    _, logs = r3gan_d_loss(critic, real, fake, gamma=0.5)
    expected = 0.25 * float(w.pow(2).sum())
    assert logs["r1"] == pytest.approx(expected, rel=1e-5) and logs["r2"] == pytest.approx(expected, rel=1e-5)
    adv = torch.nn.functional.softplus(-(critic(real) - critic(fake))).mean()
    assert logs["d"] == pytest.approx(float(adv), rel=1e-5)


def test_wgan_gradient_penalty_known_answers():
    """The penalty is (||grad|| - 1)^2: 0 for a critic with unit-norm gradient, 1 for a constant one."""
    real, fake = torch.randn(8, 1, 16, 16), torch.randn(8, 1, 16, 16)
    w = torch.randn(1, 1, 16, 16)
    w = w / w.norm()
    _, unit = wgan_gp_d_loss(lambda x: (w * x).flatten(1).sum(1), real, fake)
    _, const = wgan_gp_d_loss(lambda x: 0 * x.flatten(1).sum(1), real, fake)
    assert unit["gp"] == pytest.approx(0, abs=1e-6) and const["gp"] == pytest.approx(1, abs=1e-5)
    x = torch.randn(4, 1, 16, 16, requires_grad=True)
    assert torch.allclose(grad_sq_norm((3 * x).flatten(1).sum(1), x), torch.full((4,), 9.0 * 256))


# ---- StyleGAN3-style generator ---------------------------------------------------------------------


def test_stylegan3_positional_responds_to_position(fitted):
    """Same seed (same z), different positions: the positional variant's samples differ, the
    unconditional one's do not."""
    low, high = np.full(8, 0.1), np.full(8, 0.9)
    positional, stacked = fitted["stylegan3_positional"], fitted["stylegan3_stacked"]
    assert np.abs(positional.sample(low, seed=3) - positional.sample(high, seed=3)).mean() > 1e-2
    np.testing.assert_array_equal(stacked.sample(low, seed=3), stacked.sample(high, seed=3))


def test_stylegan3_filters_known_answers():
    """The binomial low-pass keeps constants (borders included) and linear ramps (interior) through
    upsample x2 -> downsample x2, and removes the Nyquist checkerboard entirely."""
    from synth_pipeline.imaging.models._stylegan3_nets import downsample2, filtered_lrelu, upsample2

    const = torch.full((1, 2, 8, 8), 0.7)
    assert torch.allclose(upsample2(const), torch.full((1, 2, 16, 16), 0.7))
    assert torch.allclose(filtered_lrelu(const), const * math.sqrt(2))
    ramp = torch.arange(8.0).expand(1, 1, 8, 8)
    assert torch.allclose(downsample2(upsample2(ramp))[..., 1:-1], ramp[..., 1:-1])
    checker = torch.tensor([[(-1.0) ** (i + j) for j in range(16)] for i in range(16)])[None, None]
    assert downsample2(checker).abs().max() < 1e-6


# ---- r3gan_3d ---------------------------------------------------------------------------------------


def test_r3gan_3d_trains_on_restacked_volumes(slices):
    """Each subject's slices become one size^3 volume whose first and last axial slices are the
    subject's position-0 and position-1 slices; the disc grows along the axial axis."""
    from synth_pipeline.imaging.models.gan3d import slices_to_volumes

    vols = slices_to_volumes(slices, SIZE)
    assert vols.shape == (6, 1, SIZE, SIZE, SIZE)
    for k, s in enumerate(slices.subjects()):
        own = slices.take(slices.subject == s)
        np.testing.assert_allclose(vols[k, 0, 0], own.images[own.position.argmin(), 0], atol=1e-6)
        np.testing.assert_allclose(vols[k, 0, -1], own.images[own.position.argmax(), 0], atol=1e-6)
    bright = (vols[0, 0] > 0).mean(axis=(1, 2))
    assert bright[-1] > bright[0] + 0.2


def test_r3gan_3d_slices_one_volume_per_increasing_run(fitted):
    """Increasing positions are slices of one generated volume (k / (size - 1) is volume slice k);
    a position that does not increase starts the next volume."""
    from synth_pipeline.imaging.models.gan3d import volume_runs

    gen = fitted["r3gan_3d"]
    np.testing.assert_array_equal(volume_runs(np.array([0.0, 0.5, 1.0, 0.2, 0.2, 0.9])), [0, 0, 0, 1, 2, 2])
    volumes = gen.sample_volumes(2, seed=4)
    assert volumes.shape == (2, SIZE, SIZE, SIZE)
    grid = np.arange(SIZE) / (SIZE - 1)
    np.testing.assert_allclose(gen.sample(np.r_[grid, grid], seed=4)[:, 0],
                               np.concatenate([volumes[0], volumes[1]]), atol=1e-5)  # float32 positions
    top, bottom = gen.sample(np.array([0.95]), seed=4), gen.sample(np.array([0.05]), seed=4)
    assert np.abs(top - bottom).mean() > 1e-2  # same volume, different heights


def test_on_step_stops_training_and_scoring_inside_it_changes_nothing(slices):
    """benchmarks/mri.py --cpu-marks scores a model inside `on_step` and stops it at the last mark: the
    stop comes right after the step that asked for it, and sampling mid-training (global RNGs kept,
    modules back in train mode) leaves the trained weights as they would have been."""
    def run(peek: bool) -> tuple[int, object]:
        gen, calls = make_image_generator("r3gan_positional", budget="tiny"), []

        def on_step() -> bool:
            calls.append(1)
            if peek and len(calls) == 5:
                with torch.random.fork_rng(devices=[]):
                    gen.sample(np.linspace(0, 1, 4), seed=9)
                for m in gen.modules.values():
                    m.train()
            return len(calls) == 10

        gen.fit(slices, seed=3, on_step=on_step)
        return len(calls), gen

    (n_plain, plain), (n_peek, peeked) = run(False), run(True)
    assert n_plain == n_peek == 10
    assert len(plain.history) == 2  # 7 batches of 16 per epoch: stopped 3 steps into the second
    pos = np.linspace(0, 1, 6)
    np.testing.assert_array_equal(plain.sample(pos, seed=1), peeked.sample(pos, seed=1))
