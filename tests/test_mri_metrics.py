"""Image metrics on synthetic head phantoms: known answers and sanity orderings that could fail."""

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from synth_pipeline.errors import BadInput
from synth_pipeline.imaging.metrics.conditioning import conditioning_mae, fit_position_regressor
from synth_pipeline.imaging.metrics.features import (FEATURE_DIM, RANDOM_WEIGHTS_SHA256, InceptionLite, extract,
                                                     feature_net, weights_sha256, _random_state_dict)
from synth_pipeline.imaging.metrics.fid import fid, fid_kid, kid
from synth_pipeline.imaging.metrics.memorisation import memorisation_metrics
from synth_pipeline.imaging.metrics.similarity import PSNR_CAP, position_matched_similarity
from synth_pipeline.imaging.slices import SliceSet

SIZE = 32


def phantoms(n_subjects: int, per_subject: int, seed: int, prefix: str = "s") -> SliceSet:
    """Axial-slice-like phantoms: a head ellipse whose size follows position (small at both ends) and a
    bright inner ellipse that moves and grows with position; each subject its own scale and offset,
    each slice its own texture noise. Positions are drawn uniformly per slice."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1 : 1 : SIZE * 1j, -1 : 1 : SIZE * 1j]
    imgs, pos, subj, idx = [], [], [], []
    for s in range(n_subjects):
        scale, dx, dy = rng.uniform(0.85, 1.1), rng.normal(0, 0.05), rng.normal(0, 0.05)
        for i, p in enumerate(np.sort(rng.uniform(0, 1, per_subject))):
            r = scale * (0.3 + 0.55 * np.sin(np.pi * (0.1 + 0.8 * p)))
            head = ((xx - dx) / (0.8 * r)) ** 2 + ((yy - dy) / r) ** 2 < 1
            inner = ((xx - dx) / (0.25 * r)) ** 2 + ((yy - dy - 0.5 * (p - 0.5)) / (0.15 + 0.2 * p)) ** 2 < 1
            img = np.where(head, 0.2 + 0.05 * rng.standard_normal((SIZE, SIZE)), -1.0)
            imgs.append(np.clip(np.where(inner & head, 0.8, img), -1, 1))
            pos.append(p), subj.append(f"{prefix}{s}"), idx.append(i)
    return SliceSet(np.array(imgs, np.float32)[:, None], np.array(pos, np.float32), np.array(subj), np.array(idx))


def noisy(images: np.ndarray, sd: float, seed: int = 0) -> np.ndarray:
    return np.clip(images + sd * np.random.default_rng(seed).standard_normal(images.shape), -1, 1).astype(np.float32)


def blurred(images: np.ndarray, k: int) -> np.ndarray:
    x = F.pad(torch.from_numpy(images), (k // 2,) * 4, mode="replicate")
    return F.conv2d(x, torch.ones(1, 1, k, k) / k**2).numpy()


@pytest.fixture(scope="module")
def sets():
    torch.set_num_threads(1)
    return {"a": phantoms(10, 16, seed=1, prefix="a"), "b": phantoms(10, 16, seed=2, prefix="b")}


@pytest.fixture(scope="module")
def feats(sets):
    return {k: extract(v) for k, v in sets.items()}


# ---- feature net ---------------------------------------------------------------------------------
def test_feature_net_weights_are_pinned_and_deterministic(sets, feats, tmp_path):
    fresh = InceptionLite()
    fresh.load_state_dict(_random_state_dict(fresh))
    assert weights_sha256(fresh) == feature_net().sha256 == RANDOM_WEIGHTS_SHA256
    assert feats["a"].shape == (len(sets["a"]), FEATURE_DIM)
    np.testing.assert_array_equal(extract(sets["a"].images[:20]), feats["a"][:20])
    path = tmp_path / "net.pt"
    torch.save(feature_net().module.state_dict(), path)
    local = feature_net(weights_path=path)
    assert local.sha256 == RANDOM_WEIGHTS_SHA256 and local.net_id.endswith("net.pt")
    np.testing.assert_array_equal(extract(sets["a"].images[:20], local), feats["a"][:20])
    torch.save({"nope": torch.zeros(1)}, tmp_path / "bad.pt")
    with pytest.raises(BadInput, match="bad.pt"):
        feature_net(weights_path=tmp_path / "bad.pt")


# ---- FID / KID -----------------------------------------------------------------------------------
def test_fid_known_answers_and_monotone_degradation(sets, feats):
    b = sets["b"].images[::2]  # every degraded set, and the clean one, at the same n
    assert fid(feats["a"], feats["a"]) == pytest.approx(0.0, abs=1e-6)
    by_noise = [fid(feats["a"], extract(noisy(b, sd))) for sd in (0.1, 0.3, 0.6)]
    by_blur = [fid(feats["a"], extract(blurred(b, k))) for k in (3, 5, 9)]
    same = fid(feats["a"], feats["b"][::2])
    uniform = fid(feats["a"], extract(np.random.default_rng(0).uniform(-1, 1, b.shape).astype(np.float32)))
    assert by_noise == sorted(by_noise) and by_blur == sorted(by_blur)
    assert same < by_noise[0] and same < by_blur[0]
    assert same < 0.05 * uniform


def test_kid_unbiased_near_zero_for_same_distribution(feats):
    same, same_sd, values = kid(feats["a"], feats["b"], subsets=30, subset_size=100, seed=0)
    other, _, _ = kid(feats["a"], extract(noisy(np.zeros((100, 1, SIZE, SIZE), np.float32) - 1, 0.5)), 30, 100)
    assert len(values) == 30 and values.min() < same < values.max()
    assert abs(same) < 0.02 * other and abs(same) < 3 * same_sd + 1e-3


def test_fid_kid_results_record_feature_net(sets):
    real, fake = sets["a"].take(slice(0, 40)), sets["b"].images[:40]
    f, k = fid_kid(real, fake, subsets=10, subset_size=30, seed=3)
    assert f.name == "fid" and k.name == "kid" and f.computed and k.computed
    assert f.detail["feature_net_sha256"] == RANDOM_WEIGHTS_SHA256 == k.detail["feature_net_sha256"]
    assert k.ci[0] <= k.value <= k.ci[1]
    assert fid_kid(real, fake, subsets=10, subset_size=30, seed=3)[1].value == k.value
    with pytest.raises(BadInput, match="fake"):
        fid_kid(real, fake[:, 0])


# ---- SSIM / PSNR ---------------------------------------------------------------------------------
def test_similarity_identical_then_decreasing_with_noise(sets):
    one = sets["b"].take(sets["b"].subject == "b0")
    ssim, psnr = position_matched_similarity(one.images, one.position, one)
    assert ssim.value == pytest.approx(1.0, abs=1e-5) and psnr.value == PSNR_CAP
    hold, train = sets["b"], sets["a"]
    scores = [position_matched_similarity(noisy(hold.images, sd), hold.position, hold, train) for sd in (0.05, 0.2, 0.5)]
    ssims, psnrs = [s.value for s, _ in scores], [p.value for _, p in scores]
    assert ssims == sorted(ssims, reverse=True) and psnrs == sorted(psnrs, reverse=True)
    ref = scores[0][0].detail["real_reference"]
    assert 0 < ref < 1 and scores[0][0].ci[0] <= ssims[0] <= scores[0][0].ci[1]
    with pytest.raises(BadInput, match="shape"):
        position_matched_similarity(hold.images[:, :, :16, :16], hold.position, hold)


# ---- conditioning --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def regressor(sets):
    return fit_position_regressor(phantoms(16, 16, seed=5, prefix="t"), kind="cnn", seed=0, epochs=20)


def test_conditioning_floor_and_ceiling(regressor):
    train, hold, fresh = phantoms(16, 16, seed=5, prefix="t"), phantoms(6, 16, seed=6), phantoms(6, 16, seed=7)
    true = conditioning_mae(fresh.images, fresh.position, train, hold, regressor=regressor)
    shuffled = conditioning_mae(fresh.images, np.random.default_rng(0).permutation(fresh.position), train, hold,
                                regressor=regressor)
    floor, ceiling = true.detail["floor_holdout_mae"], true.detail["ceiling_mean_mae"]
    assert floor < 0.4 * ceiling
    assert true.value < 1.5 * floor + 0.02
    assert shuffled.value > 0.8 * shuffled.detail["ceiling_mean_mae"]


def test_conditioning_regressors_are_seeded():
    train = phantoms(6, 10, seed=8)
    a = fit_position_regressor(train, kind="cnn", seed=1, epochs=2)
    b = fit_position_regressor(train, kind="cnn", seed=1, epochs=2)
    np.testing.assert_array_equal(a.predict(train.images), b.predict(train.images))
    r = fit_position_regressor(train, kind="ridge").predict(train.images)
    assert r.shape == (len(train),) and 0 <= r.min() and r.max() <= 1
    with pytest.raises(BadInput, match="regressor"):
        fit_position_regressor(train, kind="forest")


# ---- memorisation --------------------------------------------------------------------------------
def test_memorisation_of_a_train_copy(sets):
    train, hold = sets["a"], sets["b"]
    res = {r.name: r for r in memorisation_metrics(train.images[::2], train, hold)}
    for space in ("pixel", "feature"):
        assert res[f"memorisation_{space}"].value == 1.0
        assert res[f"dcr_share_{space}"].value > 0.9
    assert res["exact_copies"].value == 1.0 and res["exact_copies"].detail["exact_count"] == len(train.images[::2])
    assert res["exact_copies"].detail["holdout_rate"] == 0.0
    worst = res["memorisation_pixel"].detail["worst"][0]
    assert worst["distance"] == 0.0 and worst["train"] == 2 * worst["synthetic"]


def test_memorisation_of_fresh_samples_near_nominal():
    """One slice per subject, so slices are independent: the 5% threshold should catch ~5%."""
    train, hold, fresh = (phantoms(200, 1, seed=s, prefix=p) for s, p in ((10, "t"), (11, "h"), (12, "f")))
    res = {r.name: r for r in memorisation_metrics(fresh.images, train, hold, seed=0)}
    for space in ("pixel", "feature"):
        assert 0.0 < res[f"memorisation_{space}"].value < 0.12
        assert 0.38 < res[f"dcr_share_{space}"].value < 0.62
        assert res[f"memorisation_{space}"].detail["holdout_rate"] == pytest.approx(0.05, abs=0.01)
    assert res["exact_copies"].value == 0.0


def test_fid_matches_the_closed_form_for_gaussians():
    """N(0, I) vs N(m, 4 I) in d dims: FID = |m|^2 + d (1 + 4 - 2 * 2) = |m|^2 + d."""
    rng = np.random.default_rng(0)
    d, m = 4, np.array([1.0, 0.0, 0.0, 0.0])
    assert fid(rng.standard_normal((20000, d)), m + 2 * rng.standard_normal((20000, d))) == pytest.approx(1 + d, rel=0.03)


def test_feature_extraction_is_cached_by_content_and_returns_copies():
    from synth_pipeline.imaging.metrics.features import CACHED_SETS, FeatureNet, InceptionLite

    module = InceptionLite().eval()
    net = FeatureNet(module, "test", "x")
    calls = []
    module.register_forward_hook(lambda *_: calls.append(1))
    images = np.random.default_rng(0).uniform(-1, 1, (5, 1, 16, 16)).astype(np.float32)
    first = extract(images, net)
    first[:] = 0  # a caller mutating its result must not poison the cache
    again = extract(images.copy(), net)
    assert len(calls) == 1 and np.abs(again).sum() > 0
    other = images.copy()
    other[0, 0, 0, 0] += 0.5
    assert not np.array_equal(extract(other, net), again) and len(calls) == 2
    for i in range(CACHED_SETS + 1):
        extract(images + i + 1, net)
    assert len(net.cache) == CACHED_SETS


# ---- subject-level uncertainty ---------------------------------------------------------------------
def test_subject_bootstrap_keeps_a_subjects_slices_together():
    from synth_pipeline.imaging.metrics.bootstrap import percentile_ci, subject_draws
    from synth_pipeline.metrics.distances import wilson_interval

    subjects = np.repeat(["a", "b", "c", "d"], 10)
    memorised = (subjects == "a").astype(float)  # every slice matched to subject a is memorised, no other
    draws = subject_draws(subjects, len(subjects), fake_subject=subjects, seed=1)
    for real, fake in zip(draws.real, draws.fake):
        np.testing.assert_array_equal(subjects[real], subjects[fake])  # paired: a slice travels with its subject
        assert len(real) == 40 and all(np.sum(subjects[real] == s) % 10 == 0 for s in "abcd")
    lo, hi = percentile_ci([memorised[f].mean() for f in draws.fake])
    w_lo, w_hi = wilson_interval(10, 40)
    assert lo <= 0.0 + 1e-12 and hi >= 0.5, "four subjects, one memorised: anything from none to half"
    assert w_lo > 0.1 and w_hi < 0.45, "the slice-level interval would claim far more certainty"
    again = subject_draws(subjects, len(subjects), fake_subject=subjects, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(draws.fake, again.fake))
    unpaired = subject_draws(subjects, 7, fake_subject=None, seed=1)
    assert not unpaired.paired and all(len(f) == 7 and f.max() < 7 for f in unpaired.fake)


def test_memorisation_and_fid_carry_subject_intervals(sets):
    train, hold = sets["a"], sets["b"]
    fake = noisy(hold.images, 0.05, seed=4)
    res = {r.name: r for r in memorisation_metrics(fake, train, hold, seed=0, fake_subject=hold.subject)}
    for name in ("memorisation_pixel", "dcr_share_feature"):
        lo, hi = res[name].ci
        assert lo <= res[name].value <= hi and hi > lo
        assert res[name].detail["holdout_subjects"] == len(hold.subjects())
    f, k = fid_kid(hold, fake, subsets=10, subset_size=30, seed=3, fake_subject=hold.subject)
    assert f.ci[0] <= f.value <= f.ci[1] and f.detail["holdout_subjects"] == len(hold.subjects())
    assert k.ci[0] < k.ci[1]
