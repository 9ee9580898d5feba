"""The MRI arm end to end through `synth-pipeline mri-release` (the Dagster mri asset group): a
memorised control is refused, a real model publishes an auditable, reproducible image release, bad
input is one line and exit 2, unreadable volumes are skipped and listed."""

import json
from pathlib import Path

import jsonschema
import nibabel as nib
import numpy as np
import pytest

from synth_pipeline.cli import main
from synth_pipeline.imaging.cohort import write_pseudo_cohort
from synth_pipeline.audit import audit_release
from synth_pipeline.kernel import audit


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """Five pseudo-cohort subjects and one broken file, as a user's folder would be."""
    d = tmp_path_factory.mktemp("nifti")
    write_pseudo_cohort(d, n_subjects=5, seed=3)
    (d / "broken.nii.gz").write_text("not a NIfTI file")
    return d


def _config(tmp_path: Path, **kw) -> Path:
    p = tmp_path / "mri.json"
    p.write_text(json.dumps(kw))
    return p


def _release(folder: Path, out: Path, model: str, config: Path) -> int:
    return main(["mri-release", "--data", str(folder), "--model", model, "--budget", "tiny", "--out", str(out),
                 "--config", str(config)])


def test_the_copy_control_is_refused_and_nothing_is_published(folder, tmp_path, capsys):
    out = tmp_path / "rel"
    assert _release(folder, out, "copy", _config(tmp_path)) == 3
    err = capsys.readouterr().err
    assert "mri_memorisation_gate" in err and "memorisation pixel 1.000" in err and "exact copies" in err
    (dataset,) = [d for d in out.iterdir() if d.is_dir()]
    assert sorted(p.name for p in dataset.iterdir()) == ["refusals"]
    (record,) = (dataset / "refusals").glob("*.json")
    doc = json.loads(record.read_text())
    assert "mri_memorisation_gate" in doc["failing_gates"]
    assert record.with_suffix(".html").is_file()


def test_a_model_publishes_an_auditable_reproducible_release(folder, tmp_path, capsys):
    # The fidelity gate is switched off here: a tiny-budget model is not meant to look real, and this test
    # is about what publishing writes. The memorisation gate stays on and must pass on its own.
    cfg = _config(tmp_path, thresholds={"fid_ratio_max": None})
    releases = []
    for run in ("a", "b"):
        out = tmp_path / run
        assert _release(folder, out, "r3gan_positional", cfg) == 0
        (rel,) = [p for p in out.glob("mri-*/*") if p.name != "refusals"]
        releases.append(rel)
    a, b = releases
    assert a.name == b.name, "same seed, data and config must give the same release id"
    for name in ("synthetic_slices.nii", "synthetic_volume.nii", "positions.csv", "montage.png"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    full = audit_release(a)  # signature (this machine's development key), slice counts, ledger
    assert full.ok, full.problems
    manifest = json.loads((a / "manifest.json").read_text())
    jsonschema.validate(manifest, json.loads((Path(__file__).resolve().parent.parent / "docs" / "manifest.schema.json").read_text()))
    names = {m["name"] for m in manifest["metrics"]}
    assert {"fid", "kid", "ssim_matched", "psnr_matched", "conditioning_mae", "memorisation_pixel",
            "memorisation_feature", "exact_copies"} <= names
    assert manifest["input"]["skipped"][0]["file"].endswith("broken.nii.gz")
    assert len(manifest["input"]["sources"]) == 5
    assert set(manifest["input"]["train_subjects"]).isdisjoint(manifest["input"]["holdout_subjects"])
    assert [g["gate"] for g in manifest["gates"]] == ["mri_memorisation_gate", "mri_fidelity_gate"]
    assert all(g["passed"] for g in manifest["gates"])
    stack = np.asarray(nib.load(a / "synthetic_slices.nii").dataobj)
    assert stack.shape[:2] == (32, 32) and stack.shape[2] == manifest["n_slices"]
    assert np.isfinite(stack).all() and stack.min() >= -1 and stack.max() <= 1
    kit = tmp_path / "kit"
    assert main(["turing-kit", str(a), "--out", str(kit), "--n-each", "5"]) == 0
    assert sorted(p.name for p in kit.iterdir()) == ["answers.csv", "montage.png"]
    key = json.loads((tmp_path / "kit_key" / "answer_key.json").read_text())["tiles"]
    (kit / "answers.csv").write_text("tile,answer\n" + "".join(f"{t},{lab}\n" for t, lab in key.items()))
    assert main(["turing-score", str(kit / "answers.csv"), str(tmp_path / "kit_key" / "answer_key.json"),
                 "--json"]) == 0
    (a / "positions.csv").chmod(0o644)
    (a / "positions.csv").write_text("slice,position\n")
    assert not audit(a).ok
    captured = capsys.readouterr()
    assert '"accuracy": 1.0' in captured.out
    assert any(line.startswith("skipped ") and "broken.nii.gz" in line for line in captured.err.splitlines())


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["mri-release", "--data", str(tmp_path / "nowhere"), "--model", "dcgan", "--out",
                 str(tmp_path / "o"), "--budget", "tiny"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "nowhere" in err[-1]
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("manifest.json"))
    assert main(["mri-release", "--data", "default", "--model", "nosuch", "--out", str(tmp_path / "o")]) == 2
    assert "unknown MRI model 'nosuch'" in capsys.readouterr().err
