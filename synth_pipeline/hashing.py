"""Content hashes used to tie gate results, releases and manifests to exact bytes."""

import hashlib
import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic Parquet encoding: same values and dtypes give the same bytes. Written with
    pyarrow directly so pandas `attrs` (provenance we carry between assets) never enter the file."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, compression="zstd")
    return buf.getvalue()


def frame_sha256(df: pd.DataFrame) -> str:
    return hashlib.sha256(parquet_bytes(df)).hexdigest()
