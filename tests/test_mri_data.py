"""MRI data side: the bundled pseudo-cohort, ingestion onto the common grid, slicing, the subject split,
bad-file handling, and Colin27 as an independent real head scan."""

import gzip

import nibabel as nib
import numpy as np
import pytest

from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256
from synth_pipeline.imaging.cohort import colin27_path, default_cohort, write_pseudo_cohort
from synth_pipeline.imaging.volumes import (
    GRID_MM,
    GRID_SHAPE,
    extract_slices,
    load_folder,
    load_volume,
    split_by_subject,
)

N_SUBJECTS = 4
PLAUSIBLE_LITRES = (1.0, 1.8)  # adult brain (tissue + ventricles) volume range


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    return default_cohort(tmp_path_factory.mktemp("work"), n_subjects=N_SUBJECTS, seed=0)


@pytest.fixture(scope="module")
def ingested(cohort):
    return load_folder(cohort)


@pytest.fixture(scope="module")
def slices(ingested):
    return extract_slices(ingested.volumes, size=32)


def test_cohort_bytes_depend_only_on_seed(cohort, tmp_path):
    # subjects are seeded by (seed, number): a 2-subject cohort must equal the first 2 of the 4
    again = write_pseudo_cohort(tmp_path / "again", n_subjects=2, seed=0)
    assert [p.read_bytes() for p in again] == [(cohort / p.name).read_bytes() for p in again]
    other = write_pseudo_cohort(tmp_path / "other", n_subjects=1, seed=1)
    assert other[0].read_bytes() != (cohort / other[0].name).read_bytes()
    assert gzip.decompress(again[0].read_bytes())  # a real gzip stream, written with mtime 0
    assert again[0].read_bytes()[4:8] == b"\0\0\0\0"


def test_default_cohort_is_written_once(cohort):
    files = sorted(cohort.iterdir())
    assert [p.name for p in files] == [f"sub-{i:02d}.nii.gz" for i in range(1, N_SUBJECTS + 1)]
    stamps = [p.stat().st_mtime_ns for p in files]
    assert default_cohort(cohort.parent, n_subjects=N_SUBJECTS, seed=0) == cohort
    assert [p.stat().st_mtime_ns for p in files] == stamps
    assert sorted(p.name for p in cohort.parent.iterdir()) == [cohort.name]  # no temp dir left


def test_load_folder_puts_every_volume_on_the_common_grid(cohort, ingested):
    assert ingested.skipped == ()
    assert [v.subject for v in ingested.volumes] == [f"sub-{i:02d}" for i in range(1, N_SUBJECTS + 1)]
    for v in ingested.volumes:
        assert v.data.shape == v.mask.shape == GRID_SHAPE
        assert v.data.dtype == np.float32 and v.mask.dtype == bool
        assert v.data.min() == 0.0 and v.data.max() == 1.0
        assert not v.data[~v.mask].any()
        assert PLAUSIBLE_LITRES[0] <= v.mask.sum() * GRID_MM**3 / 1e6 <= PLAUSIBLE_LITRES[1]
        assert v.sha256 == file_sha256(cohort / f"{v.subject}.nii.gz")
    assert len({v.sha256 for v in ingested.volumes}) == N_SUBJECTS


def test_orientation_and_4d_single_volume_give_the_same_volume(cohort, tmp_path):
    """sub-01 is stored LAS: written again as RAS, or as a 4D file with one volume, it must load to the
    identical array (the deformation is not left-right symmetric, so a missed flip would show)."""
    img = nib.load(str(cohort / "sub-01.nii.gz"))
    assert nib.aff2axcodes(img.affine) == ("L", "A", "S")
    ras = nib.as_closest_canonical(img)
    assert not np.array_equal(np.asarray(ras.dataobj), np.asarray(img.dataobj))
    nib.save(ras, tmp_path / "ras.nii")
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj)[..., None], img.affine), tmp_path / "four.nii")
    reference = load_volume(cohort / "sub-01.nii.gz")
    for name in ("ras.nii", "four.nii"):
        assert np.array_equal(load_volume(tmp_path / name).data, reference.data)


def test_extract_slices_shapes_range_and_positions(ingested, slices):
    assert slices.images.shape[1:] == (1, 32, 32) and slices.images.dtype == np.float32
    assert slices.images.min() == -1.0 and slices.images.max() <= 1.0
    assert sorted(set(slices.subject.tolist())) == [v.subject for v in ingested.volumes]
    for s in slices.subjects():
        mine = slices.subject == s
        pos, idx = slices.position[mine], slices.index[mine]
        assert pos.min() == 0.0 and pos.max() == 1.0
        assert np.all(np.diff(idx) > 0) and np.all(np.diff(pos) > 0)  # position rises with height
        assert 0 <= idx.min() and idx.max() < GRID_SHAPE[2]
        assert (slices.images[mine] > -1).mean(axis=(1, 2, 3)).min() > 0.0
    # same slices at another size; a stricter brain fraction keeps fewer
    assert len(extract_slices(ingested.volumes, size=64)) == len(slices)
    assert len(extract_slices(ingested.volumes, size=32, min_brain_fraction=0.2)) < len(slices)


def test_split_is_by_subject_and_seeded(slices):
    train, holdout = split_by_subject(slices, holdout_fraction=0.3, seed=0)
    assert len(train) + len(holdout) == len(slices)
    assert train.subjects() and holdout.subjects()
    assert not set(train.subjects()) & set(holdout.subjects())
    again, _ = split_by_subject(slices, holdout_fraction=0.3, seed=0)
    assert np.array_equal(again.images, train.images)
    held = {tuple(split_by_subject(slices, seed=s)[1].subjects()) for s in range(8)}
    assert len(held) > 1
    with pytest.raises(BadInput, match="at least 2 subjects"):
        split_by_subject(slices.take(slices.subject == slices.subject[0]))


def test_bad_files_are_skipped_one_line_each(cohort, tmp_path):
    for name in ("sub-01.nii.gz", "sub-02.nii.gz"):
        (tmp_path / name).write_bytes((cohort / name).read_bytes())
    (tmp_path / "x.nii.gz").write_text("not an image\n")
    nib.save(nib.Nifti1Image(np.ones((20, 20), np.float32), np.eye(4)), tmp_path / "flat.nii")
    nib.save(nib.Nifti1Image(np.zeros((30, 30, 30), np.float32), np.eye(4)), tmp_path / "zeros.nii")
    nib.save(nib.Nifti1Image(np.ones((40, 40, 40), np.float32), np.eye(4)), tmp_path / "cube.nii")
    nan = np.ones((30, 30, 30), np.float32)
    nan[5, 5, 5] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((30, 30, 30, 2), np.float32), np.eye(4)), tmp_path / "multi.nii")
    (tmp_path / "notes.txt").write_text("ignored: not a NIfTI name\n")

    result = load_folder(tmp_path)
    assert [v.subject for v in result.volumes] == ["sub-01", "sub-02"]
    reasons = {s.file.rsplit("/", 1)[-1]: s.reason for s in result.skipped}
    assert sorted(reasons) == ["cube.nii", "flat.nii", "multi.nii", "nan.nii.gz", "x.nii.gz", "zeros.nii"]
    for name, reason in reasons.items():
        assert name in reason and "\n" not in reason
    assert "NIfTI" in reasons["x.nii.gz"]
    assert "3D" in reasons["flat.nii"] and "3D" in reasons["multi.nii"]
    assert "all zeros" in reasons["zeros.nii"]
    assert "non-finite" in reasons["nan.nii.gz"]
    assert "no brain" in reasons["cube.nii"]  # 64 ml of uniform signal is not a brain


def test_missing_or_hopeless_folder_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        load_folder(tmp_path / "nowhere")
    (tmp_path / "x.nii").write_text("junk")
    with pytest.raises(BadInput, match=str(tmp_path)):
        load_folder(tmp_path)


def test_colin27_real_head_scan_loads_with_a_plausible_brain():
    path = colin27_path()
    if path is None:
        pytest.skip("Colin27 (Debian mricron-data) not installed")
    v = load_volume(path)
    assert v.subject == "ch2" and v.data.shape == GRID_SHAPE
    litres = v.mask.sum() * GRID_MM**3 / 1e6
    assert PLAUSIBLE_LITRES[0] <= litres <= PLAUSIBLE_LITRES[1]
    # skull and scalp excluded: the mask on the full head agrees with the mask on the BET
    # skull-stripped copy that mricron-data ships beside it (the whole head would be ~2.7 l)
    stripped = path.with_name("ch2bet.nii.gz")
    if stripped.is_file():
        other = load_volume(stripped).mask
        assert 2 * (v.mask & other).sum() / (v.mask.sum() + other.sum()) > 0.9
    assert 40 <= len(extract_slices([v], size=32)) <= GRID_SHAPE[2]
