"""Content hashes used to tie gate results, releases and manifests to exact bytes."""

import hashlib
import io
from pathlib import Path

import pandas as pd


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic Parquet encoding: same values and dtypes give the same bytes."""
    buf = io.BytesIO()
    df.to_parquet(buf, engine="pyarrow", index=False, compression="zstd")
    return buf.getvalue()


def frame_sha256(df: pd.DataFrame) -> str:
    return hashlib.sha256(parquet_bytes(df)).hexdigest()
