"""Content hashes used to tie gate results, releases and manifests to exact bytes."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from synth_pipeline.batches import file_blocks, row_batches


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    for block in file_blocks(path):
        h.update(block)
    return h.hexdigest()


def parquet_bytes(df: pd.DataFrame) -> bytes:
    """Deterministic Parquet encoding: same values and dtypes give the same bytes. Written with
    pyarrow directly so pandas `attrs` (provenance we carry between assets) never enter the file."""
    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), buf, compression="zstd")
    return buf.getvalue()


def frame_sha256(df: pd.DataFrame) -> str:
    return hashlib.sha256(parquet_bytes(df)).hexdigest()


def row_hashes(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    """One 64-bit hash per row over `columns`, equal exactly when the rows are equal on every column:
    missing equals missing, numbers compared to 12 significant digits (so float noise from decoding
    does not hide a copy, and -0.0 equals 0.0). The one way rows are matched between tables; the
    hashes stay in memory (they are a membership oracle for the table they came from). Computed a
    batch of rows at a time (batches.row_batches): each row's hash depends on that row alone, and
    the values formatted as text never exist for the whole table at once."""
    out = np.empty(len(df), dtype=np.uint64)
    start = 0
    for batch in row_batches(df):
        out[start:start + len(batch)] = _batch_hashes(batch, columns)
        start += len(batch)
    return out


def _batch_hashes(df: pd.DataFrame, columns: list[str]) -> np.ndarray:
    parts = {}
    for c in columns:
        s = df[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            v = s.to_numpy(dtype=np.float64) + 0.0
            parts[c] = np.where(np.isnan(v), "\x00", np.char.mod("%.12g", np.nan_to_num(v)))
        else:
            parts[c] = np.where(s.isna().to_numpy(), "\x00", s.astype(str).to_numpy())
    frame = pd.DataFrame(parts, columns=columns)
    return pd.util.hash_pandas_object(frame, index=False).to_numpy()
