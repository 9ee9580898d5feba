"""Bundled MRI data, no download: a seeded pseudo-cohort made from the MNI ICBM152 2009a template that
nilearn ships inside its wheel, and Colin27 (Debian `mricron-data`) as an independent real head scan.

The pseudo-cohort is NOT a patient cohort: every subject is the same template brain, warped and
degraded. It exercises ingestion, slicing, training and the gates end to end with realistic image
statistics; it says nothing about clinical realism or about how a model handles real anatomy variation.

Per subject (seeded by (seed, subject number), so subjects are independent of n_subjects):
* the template (1 mm, skull-stripped, uint8) downsampled once to 2 mm (Gaussian pre-smoothing);
* an isotropic global scale in [0.85, 0.97] about the brain centre: MNI152 space is enlarged relative to
  native brains (the template's brain mask is ~1.73 l), this brings volumes to ~1.1-1.6 l;
* a smooth random displacement field: Gaussian values on a 5x5x5 control grid (SD 3 mm per axis),
  cubic-upsampled to the volume, so local anatomy moves by a few mm;
* a smooth multiplicative bias field exp(b), b from a 4x4x4 control grid (SD 0.1): +-10-20% shading,
  as from receive-coil sensitivity;
* Rician noise (Gaussian noise on the real and imaginary channels, magnitude taken), SD 2% of the
  intensity range, which also gives the background its non-zero noise floor;
* stored as int16, 2 mm; odd-numbered subjects in LAS orientation (x flipped, as FSL writes), even ones
  in RAS, so ingestion's reorientation is always exercised.
Files are gzip-compressed with mtime 0 and no file name in the header: same seed, same bytes.
"""

import functools
import gzip
import os
import shutil
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from synth_pipeline.imaging.volumes import GRID_MM, resample_to_grid

TEMPLATE_FILE = "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
COLIN27 = Path("/usr/share/mricron/templates/ch2.nii.gz")
SCALE_RANGE = (0.85, 0.97)
DISPLACEMENT_SD_MM = 3.0
BIAS_SD = 0.1
NOISE_SD = 0.02
INT16_MAX_VALUE = 1000


def template_path() -> Path:
    """The MNI ICBM152 2009a T1 template file inside the installed nilearn wheel (read directly,
    never through nilearn's fetchers, which may download)."""
    import nilearn.datasets

    return Path(nilearn.datasets.__file__).parent / "data" / TEMPLATE_FILE


def colin27_path() -> Path | None:
    """Colin Holmes' single-subject head scan (Colin27, 'ch2', 1 mm) from Debian mricron-data, if installed."""
    return COLIN27 if COLIN27.is_file() else None


@functools.lru_cache(maxsize=1)
def _template_2mm() -> tuple[np.ndarray, np.ndarray]:
    """(template on a 2 mm RAS grid scaled to [0, 1], its affine)."""
    img = nib.as_closest_canonical(nib.load(str(template_path())))
    data = resample_to_grid(img.get_fdata(dtype=np.float32), np.asarray(img.header.get_zooms()[:3]))
    affine = img.affine.copy()
    affine[:3, :3] = np.diag([GRID_MM] * 3)
    return data / data.max(), affine


def _smooth_field(rng: np.random.Generator, control: int, shape: tuple, sd: float) -> np.ndarray:
    coarse = rng.normal(0.0, sd, (control,) * 3)
    return ndimage.zoom(coarse, np.array(shape) / control, order=3, mode="nearest")[
        : shape[0], : shape[1], : shape[2]]


def _subject_volume(template: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    shape = template.shape
    centre = np.array(shape) / 2.0
    scale = rng.uniform(*SCALE_RANGE)
    grid = np.indices(shape, dtype=np.float32)
    coords = [centre[a] + (grid[a] - centre[a]) / scale
              + _smooth_field(rng, 5, shape, DISPLACEMENT_SD_MM / GRID_MM) for a in range(3)]
    warped = ndimage.map_coordinates(template, coords, order=1, mode="constant", cval=0.0)
    bias = np.exp(_smooth_field(rng, 4, shape, BIAS_SD))
    signal = warped * bias
    real = signal + rng.normal(0.0, NOISE_SD, shape)
    imag = rng.normal(0.0, NOISE_SD, shape)
    return np.sqrt(real**2 + imag**2)


def _nifti_bytes(data: np.ndarray, affine: np.ndarray, flip_x: bool) -> bytes:
    values = np.round(np.clip(data, 0, None) * INT16_MAX_VALUE).astype(np.int16)
    if flip_x:
        values = values[::-1]
        affine = affine @ np.array([[-1, 0, 0, data.shape[0] - 1], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    img = nib.Nifti1Image(values, affine)
    img.header.set_xyzt_units("mm")
    return gzip.compress(img.to_bytes(), compresslevel=6, mtime=0)


def write_pseudo_cohort(folder: Path, *, n_subjects: int = 12, seed: int = 0) -> list[Path]:
    """Write sub-01.nii.gz ... sub-<n>.nii.gz into `folder` (recipe in the module docstring)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    template, affine = _template_2mm()
    paths = []
    for i in range(1, n_subjects + 1):
        rng = np.random.default_rng([seed, i])
        path = folder / f"sub-{i:02d}.nii.gz"
        path.write_bytes(_nifti_bytes(_subject_volume(template, rng), affine, flip_x=i % 2 == 1))
        paths.append(path)
    return paths


def default_cohort(work_dir: Path, *, n_subjects: int = 12, seed: int = 0) -> Path:
    """work_dir/mri-cohort-<n>-<seed>, written once (into a temp dir, then renamed, so a crash or a
    concurrent run never leaves a half-written cohort behind) and reused afterwards."""
    work_dir = Path(work_dir)
    target = work_dir / f"mri-cohort-{n_subjects}-{seed}"
    if target.is_dir():
        return target
    work_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=work_dir, prefix=f".{target.name}-"))
    try:
        write_pseudo_cohort(tmp, n_subjects=n_subjects, seed=seed)
        tmp.chmod(0o755)
        os.rename(tmp, target)
    except OSError:
        if not target.is_dir():
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target
