"""What an image release contains, as bytes: the synthetic slices as one NIfTI stack with a CSV of
their positions, an assembled synthetic volume (position-conditioned models), a PNG montage and the
readable report. Byte-stable for the same images (uncompressed NIfTI, PNG without a timestamp), so
the same seed, data and config give the same release id.

Only synthetic images ever reach these files; real slices appear nowhere in a release.
"""

import base64
import hashlib
import io

import numpy as np

from synth_pipeline.imaging.slices import SliceSet

SLICES_FILE = "synthetic_slices.nii"
POSITIONS_FILE = "positions.csv"
VOLUME_FILE = "synthetic_volume.nii"
MONTAGE_FILE = "montage.png"


def candidate_sha256(fake: SliceSet) -> str:
    """Identity of a candidate: its pixels and positions (what the gates judged and what is released)."""
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(fake.images, dtype=np.float32).tobytes())
    h.update(np.ascontiguousarray(fake.position, dtype=np.float32).tobytes())
    return h.hexdigest()


def nifti_bytes(stack: np.ndarray, voxel_mm: tuple[float, float, float]) -> bytes:
    """(n, H, W) -> an uncompressed NIfTI-1 volume (H, W, n) with a diagonal affine (no timestamps)."""
    import nibabel as nib

    data = np.ascontiguousarray(np.transpose(np.asarray(stack, dtype=np.float32), (1, 2, 0)))
    img = nib.Nifti1Image(data, np.diag([*voxel_mm, 1.0]))
    img.header.set_xyzt_units("mm")
    return img.to_bytes()


def positions_csv(positions: np.ndarray) -> bytes:
    lines = ["slice,position"] + [f"{i},{p:.6f}" for i, p in enumerate(np.asarray(positions, dtype=np.float64))]
    return ("\n".join(lines) + "\n").encode()


def montage(images: np.ndarray, ncols: int = 16) -> np.ndarray:
    """(n, 1, H, W) in [-1, 1] -> one uint8 grey image, tiles in the given order, 1-pixel gaps."""
    n, _, h, w = images.shape
    rows = max(1, -(-n // ncols))
    cols = min(ncols, max(n, 1))
    grid = np.zeros((rows * (h + 1) + 1, cols * (w + 1) + 1), dtype=np.uint8)
    tiles = np.clip((images[:, 0] + 1.0) * 127.5, 0, 255).round().astype(np.uint8)
    for k, tile in enumerate(tiles):
        r, c = divmod(k, cols)
        grid[1 + r * (h + 1):1 + r * (h + 1) + h, 1 + c * (w + 1):1 + c * (w + 1) + w] = tile
    return grid


def png_bytes(grey: np.ndarray, scale: int = 2) -> bytes:
    from PIL import Image

    img = Image.fromarray(np.kron(grey, np.ones((scale, scale), dtype=np.uint8)))
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()


def montage_by_position(fake: SliceSet, max_tiles: int = 64) -> bytes:
    """The release montage: up to `max_tiles` synthetic slices evenly spread over position, low to high."""
    order = np.argsort(fake.position, kind="stable")
    pick = order[np.linspace(0, len(order) - 1, min(max_tiles, len(order))).round().astype(int)]
    return png_bytes(montage(fake.images[pick]))


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
