"""Streaming passes: a file's bytes or a table's rows one bounded piece at a time.

A pass that looks at each byte or row on its own (hashing a file, checking its encoding, hashing
rows to match copies) needs no whole table in memory, and done whole its intermediates can be
several times the table: hashing.row_hashes formats every value as text, about 500 MiB for a
1M-row, 9-column table (benchmarks/SCALE.md). These are the one way to iterate in pieces; what a
pass computes must not depend on the piece size (tests/test_batches.py runs them at one row).
"""

from collections.abc import Iterator
from pathlib import Path

import pandas as pd

BLOCK_BYTES = 1 << 20
BATCH_ROWS = 65_536


def file_blocks(path: Path, size: int | None = None) -> Iterator[bytes]:
    """The file's bytes in blocks of `size` (default BLOCK_BYTES), the last one shorter."""
    size = size or BLOCK_BYTES
    with open(path, "rb") as f:
        yield from iter(lambda: f.read(size), b"")


def row_batches(df: pd.DataFrame, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """Successive row ranges of `df`, `rows` (default BATCH_ROWS) at a time, as views (no copy);
    nothing for an empty frame."""
    rows = rows or BATCH_ROWS
    for start in range(0, len(df), rows):
        yield df.iloc[start:start + rows]
