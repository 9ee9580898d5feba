"""Streaming passes (synth_pipeline.batches) give what the whole-table passes gave: row hashes and
copy counts at any batch size, the CSV reader's table from a stream, the same one-line errors."""

import hashlib
import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_pipeline import batches
from synth_pipeline.copies import training_shares
from synth_pipeline.data.readers import decode_text, read_csv, read_table, sniff_delimiter
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256, frame_sha256, row_hashes

WHOLE = 10**9  # one batch: the whole-table pass as it ran before batching


def _mixed() -> pd.DataFrame:
    """Numbers with float noise, -0.0 and missing; text with None and 'nan'; ints, bools and a
    category; duplicate rows placed so that tiny batches split them."""
    base = pd.DataFrame({
        "x": [1.0, np.nan, -0.0, 3.25, 1.0 * (1 + 1e-15), 2.5, 0.0],
        "s": ["a", None, "nan", "Männlich", "a", "b", "nan"],
        "i": [1, 2, 3, 4, 1, 6, 3],
        "b": [True, False, True, True, True, False, True],
        "c": pd.Categorical(["u", "v", "u", None, "u", "v", "u"]),
    })
    return pd.concat([base, base.iloc[[0, 2, 4]]], ignore_index=True)


def test_file_blocks_rejoin_to_the_file_and_hash_as_it(tmp_path: Path, monkeypatch) -> None:
    data = bytes(range(256)) * 41
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    for size in (1, 7, 4096, None):
        blocks = list(batches.file_blocks(path, size))
        assert b"".join(blocks) == data
        assert all(len(b) == (size or batches.BLOCK_BYTES) for b in blocks[:-1])
    monkeypatch.setattr(batches, "BLOCK_BYTES", 3)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()


def test_row_batches_cover_every_row_once() -> None:
    df = _mixed()
    parts = list(batches.row_batches(df, 3))
    assert [len(p) for p in parts] == [3, 3, 3, 1]
    pd.testing.assert_frame_equal(pd.concat(parts), df)
    assert list(batches.row_batches(df.iloc[:0], 3)) == []


@pytest.mark.parametrize("rows", [1, 2, 7])
def test_row_hashes_do_not_depend_on_the_batch_size(rows: int, monkeypatch) -> None:
    df, cols = _mixed(), ["x", "s", "i", "b", "c"]
    monkeypatch.setattr(batches, "BATCH_ROWS", WHOLE)
    whole = row_hashes(df, cols)
    monkeypatch.setattr(batches, "BATCH_ROWS", rows)
    batched = row_hashes(df, cols)
    assert batched.dtype == whole.dtype == np.uint64
    np.testing.assert_array_equal(batched, whole)
    assert batched[0] == batched[4] == batched[7] != batched[2]  # noise-equal rows match, across batches


@pytest.mark.parametrize("rows", [1, 3])
def test_copy_counts_across_batch_boundaries(rows: int, monkeypatch) -> None:
    train, cols = _mixed(), ["x", "s", "i", "b", "c"]
    synthetic = train.iloc[[0, 1, 2, 5]].reset_index(drop=True)
    monkeypatch.setattr(batches, "BATCH_ROWS", rows)
    shares = training_shares(synthetic, train=train, columns=cols)
    monkeypatch.setattr(batches, "BATCH_ROWS", WHOLE)
    np.testing.assert_array_equal(shares, training_shares(synthetic, train=train, columns=cols))
    # row 0 is held by train rows 0, 4 (float noise), 7 and 9; row 2 by rows 2, 6 (0.0 = -0.0) and 8
    assert shares.tolist() == [4, 1, 3, 1]


def _whole_text_read(path: Path) -> pd.DataFrame:
    """The CSV reader as it was: the file decoded whole, then parsed from the text."""
    text = decode_text(path, path.read_bytes())
    return pd.read_csv(io.StringIO(text), sep=sniff_delimiter(text[:64 * 1024]))


def _table(rows: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"age": rng.integers(40, 90, rows), "kappa": rng.normal(1, 0.3, rows).round(4),
                         "sex": rng.choice(["F", "Männlich", "Ærø"], rows), "death": rng.choice(["a", "d"], rows)})


@pytest.mark.parametrize(("encoding", "sep", "newline"), [
    ("utf-8", ",", "\n"), ("utf-8-sig", ";", "\r\n"), ("latin-1", ",", "\n"), ("utf-16", "\t", "\r\n"),
])
@pytest.mark.parametrize("block", [1, 5, None])
def test_csv_stream_reads_what_the_whole_text_read(tmp_path: Path, monkeypatch, encoding, sep, newline, block) -> None:
    path = tmp_path / "t.csv"
    path.write_bytes(_table().to_csv(index=False, sep=sep, lineterminator=newline).encode(encoding))
    monkeypatch.setattr(batches, "BLOCK_BYTES", block or batches.BLOCK_BYTES)
    streamed, whole = read_csv(path), _whole_text_read(path)
    pd.testing.assert_frame_equal(streamed, whole)
    assert frame_sha256(streamed) == frame_sha256(whole)
    assert streamed["sex"].str.contains("ä|Æ").any() and len(streamed.columns) == 4


def test_latin1_byte_far_past_the_first_block_is_still_latin1(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "late.csv"
    table = _table(2000).assign(sex="F")
    table.loc[1990, "sex"] = "Ærø"
    path.write_bytes(table.to_csv(index=False).encode("latin-1"))
    monkeypatch.setattr(batches, "BLOCK_BYTES", 64)
    got = read_csv(path)
    assert got.loc[1990, "sex"] == "Ærø"
    pd.testing.assert_frame_equal(got, _whole_text_read(path))


@pytest.mark.parametrize("rows", [1, 4])
def test_csv_and_parquet_inputs_hash_alike_in_batches(tmp_path: Path, monkeypatch, rows: int) -> None:
    table = _table(50)
    table.loc[[3, 17], "kappa"] = np.nan
    table.to_csv(tmp_path / "t.csv", index=False)
    table.to_parquet(tmp_path / "t.parquet", index=False)
    cols = list(table.columns)
    monkeypatch.setattr(batches, "BATCH_ROWS", WHOLE)
    whole = row_hashes(read_table(tmp_path / "t.parquet"), cols)
    monkeypatch.setattr(batches, "BATCH_ROWS", rows)
    monkeypatch.setattr(batches, "BLOCK_BYTES", 7)
    for name in ("t.csv", "t.parquet"):
        np.testing.assert_array_equal(row_hashes(read_table(tmp_path / name), cols), whole)


@pytest.mark.parametrize(("content", "needle"), [
    (b"", "table is empty"),
    (b" \n\t\r\n", "table is empty"),
    (b"\xef\xbb\xbf \n", "table is empty"),  # a utf-8 byte-order mark and whitespace
    (b"\xff\xfe a\x00", "not valid UTF-16 text despite its byte-order mark"),  # odd byte count
    (b"age,death\n1,a\n" + b"\x00" * 10, "not a text file"),
    (b'a,b\n"1,2\n', "cannot parse CSV"),
])
def test_bad_csv_still_gives_one_clear_line(tmp_path: Path, monkeypatch, content: bytes, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    monkeypatch.setattr(batches, "BLOCK_BYTES", 2)
    with pytest.raises(BadInput) as e:
        read_table(path)
    msg = str(e.value)
    assert msg.startswith(f"{path}: ") and needle in msg and "\n" not in msg
