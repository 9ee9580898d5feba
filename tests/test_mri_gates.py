"""The image gates and the release files, on hand-made metrics and images (no model needed)."""

import numpy as np
import pytest

from synth_pipeline.imaging.config import MriConfig, MriThresholds, mri_gate_settings_sha256
from synth_pipeline.imaging.gates import judge_all, mri_fidelity_gate, mri_memorisation_gate
from synth_pipeline.imaging.publish import candidate_sha256, montage, nifti_bytes, png_bytes, positions_csv
from synth_pipeline.imaging.slices import SliceSet
from synth_pipeline.metrics.base import MetricResult

T = MriThresholds()


def _privacy(mem_px: float, mem_ft: float, share_px: float, share_ft: float, copies: int, holdout_rate: float = 0.0):
    return [
        MetricResult("memorisation_pixel", mem_px), MetricResult("memorisation_feature", mem_ft),
        MetricResult("dcr_share_pixel", share_px), MetricResult("dcr_share_feature", share_ft),
        MetricResult("exact_copies", copies / 200, detail={"exact_count": copies, "holdout_rate": holdout_rate}),
    ]


def test_a_fresh_like_sample_passes_the_memorisation_gate():
    g = mri_memorisation_gate(_privacy(0.04, 0.06, 0.51, 0.49, 0), T)
    assert g.passed, g.reason
    assert all(m.passed for m in g.metrics)


@pytest.mark.parametrize("metrics, failing", [
    (_privacy(1.0, 1.0, 1.0, 1.0, 200), "memorisation pixel"),          # a copy of train
    (_privacy(0.04, 0.30, 0.50, 0.55, 0), "memorisation feature"),      # near-copies seen by features only
    (_privacy(0.04, 0.05, 0.50, 0.50, 3), "exact copies"),
])
def test_memorisation_gate_refuses_and_names_the_failing_check(metrics, failing):
    g = mri_memorisation_gate(metrics, T)
    assert not g.passed
    assert failing in g.reason.split(";")[0]


def test_dcr_share_is_reported_not_gated():
    g = mri_memorisation_gate(_privacy(0.0, 0.0, 1.0, 1.0, 0), T)
    assert g.passed, g.reason
    assert "dcr" not in g.reason


def test_missing_or_uncomputed_metric_refuses():
    metrics = _privacy(0.04, 0.05, 0.5, 0.5, 0)[1:]
    assert not mri_memorisation_gate(metrics, T).passed
    broken = [MetricResult("fid_ratio", None, error="feature net failed")]
    g = mri_fidelity_gate(broken, T)
    assert not g.passed and "feature net failed" in g.reason


def test_fidelity_gate_threshold_and_switch_off():
    assert mri_fidelity_gate([MetricResult("fid_ratio", 0.2)], T).passed
    assert not mri_fidelity_gate([MetricResult("fid_ratio", 0.8)], T).passed
    off = mri_fidelity_gate([MetricResult("fid_ratio", 0.8)], MriThresholds(fid_ratio_max=None))
    assert off.passed and "switched off" in off.reason
    assert [g.gate for g in judge_all([MetricResult("fid_ratio", 0.2)], T)] == ["mri_memorisation_gate",
                                                                               "mri_fidelity_gate"]


def test_gate_settings_digest_changes_with_thresholds_and_seed():
    base = mri_gate_settings_sha256(MriConfig())
    assert base == mri_gate_settings_sha256(MriConfig(model="dcgan"))
    assert base != mri_gate_settings_sha256(MriConfig(seed=1))
    assert base != mri_gate_settings_sha256(MriConfig(thresholds=MriThresholds(fid_ratio_max=0.4)))


def test_release_files_are_byte_stable_and_hold_only_the_given_images(tmp_path):
    import nibabel as nib

    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, size=(5, 1, 8, 8)).astype(np.float32)
    fake = SliceSet(images, np.linspace(0, 1, 5, dtype=np.float32), np.array(["synthetic"] * 5), np.arange(5))
    raw = nifti_bytes(images[:, 0], (7.0, 7.0, 2.0))
    assert raw == nifti_bytes(images[:, 0], (7.0, 7.0, 2.0))
    (tmp_path / "s.nii").write_bytes(raw)
    back = nib.load(tmp_path / "s.nii")
    assert back.shape == (8, 8, 5)
    np.testing.assert_array_equal(np.transpose(np.asarray(back.dataobj), (2, 0, 1)), images[:, 0])
    assert positions_csv(fake.position).decode().splitlines()[0] == "slice,position"
    grid = montage(images, ncols=4)
    assert grid.shape == (2 * 9 + 1, 4 * 9 + 1) and grid.dtype == np.uint8
    assert png_bytes(grid) == png_bytes(grid) and png_bytes(grid)[:8] == b"\x89PNG\r\n\x1a\n"
    other = SliceSet(images[::-1].copy(), fake.position, fake.subject, fake.index)
    assert candidate_sha256(fake) == candidate_sha256(SliceSet(images.copy(), fake.position, fake.subject, fake.index))
    assert candidate_sha256(fake) != candidate_sha256(other)
