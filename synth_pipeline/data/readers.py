"""File readers: CSV (sniffed delimiter, utf-8 then latin-1), Parquet and ARFF -> a raw DataFrame.

Every failure becomes a one-line BadInput naming the file, so the CLI can exit 2 with it."""

import codecs
import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.io import arff

from synth_pipeline.batches import file_blocks
from synth_pipeline.errors import BadInput

SUPPORTED = (".csv", ".parquet", ".arff")
_SNIFF_BYTES = 64 * 1024
_DELIMITERS = ",;\t|"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def read_table(path: Path) -> pd.DataFrame:
    """Read a supported file; raise BadInput for a missing, unsupported, unreadable or empty one."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    readers = {".csv": read_csv, ".parquet": read_parquet, ".arff": read_arff}
    if suffix not in readers:
        raise BadInput(f"{path}: unsupported file type '{suffix}' (expected one of {', '.join(SUPPORTED)})")
    df = readers[suffix](path)
    if df.shape[1] == 0 or df.shape[0] == 0:
        raise BadInput(f"{path}: table is empty (no data rows)")
    return df


def decode_text(path: Path, data: bytes) -> str:
    """utf-8 (BOM tolerated) first, latin-1 as the fallback older exports need; UTF-16 only with its
    byte-order mark (Excel's "Unicode text"); otherwise NUL bytes mean binary."""
    if data[:2] in _UTF16_BOMS:
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not valid UTF-16 text despite its byte-order mark") from None
    if b"\x00" in data[:_SNIFF_BYTES]:
        raise BadInput(f"{path}: not a text file (binary content, or UTF-16 without a byte-order mark)")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def sniff_delimiter(sample: str) -> str:
    """The sample's delimiter among , ; tab |; a comma when the sniffer cannot tell (one column)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=_DELIMITERS).delimiter
    except csv.Error:
        return ","


def text_encoding(path: Path) -> tuple[str, bool]:
    """The encoding decode_text chooses for the whole file, and whether its text holds more than
    whitespace, by streaming passes over its blocks (batches.file_blocks; a second one only for a
    latin-1 file), so neither the file's bytes nor its text are held whole."""
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    if head[:2] in _UTF16_BOMS:
        try:
            return "utf-16", _has_text(path, "utf-16")
        except UnicodeDecodeError:
            raise BadInput(f"{path}: not valid UTF-16 text despite its byte-order mark") from None
    if b"\x00" in head:
        raise BadInput(f"{path}: not a text file (binary content, or UTF-16 without a byte-order mark)")
    try:
        return "utf-8-sig", _has_text(path, "utf-8-sig")
    except UnicodeDecodeError:
        return "latin-1", _has_text(path, "latin-1")


def _has_text(path: Path, encoding: str) -> bool:
    """Whether the file, decoded block by block, holds a non-whitespace character; raises
    UnicodeDecodeError where it is not valid in `encoding`."""
    decoder = codecs.getincrementaldecoder(encoding)()
    found = False
    for block in file_blocks(path):
        found = bool(decoder.decode(block).strip()) or found
    return bool(decoder.decode(b"", final=True).strip()) or found


def read_csv(path: Path) -> pd.DataFrame:
    """pandas parses the file as a text stream in the encoding text_encoding found: the same text,
    delimiter and parser as decoding the whole file first, without its bytes and its decoded text
    in memory beside the table (at 1M rows they were twice the table again; benchmarks/SCALE.md)."""
    try:
        encoding, has_text = text_encoding(path)
        if not has_text:
            raise BadInput(f"{path}: table is empty (no data rows)")
        with open(path, encoding=encoding, newline="") as f:
            sep = sniff_delimiter(f.read(_SNIFF_BYTES))
            f.seek(0)
            return pd.read_csv(f, sep=sep)
    except BadInput:
        raise
    except OSError as e:
        raise BadInput(f"{path}: cannot read file ({e.strerror})") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
        raise BadInput(f"{path}: cannot parse CSV ({_first_line(e)})") from None


def read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow

    import pyarrow.parquet as pq
    import pyarrow.types as pt

    try:
        schema = pq.read_schema(path)
        for field in schema:
            if pt.is_nested(field.type) or pt.is_binary(field.type) or pt.is_large_binary(field.type):
                raise BadInput(f"{path}: column '{field.name}' holds {field.type} values; only flat numbers, text, "
                               "dates and booleans can be modelled (flatten or drop it)")
        return pd.read_parquet(path, engine="pyarrow")
    except (OSError, pyarrow.ArrowException, ValueError) as e:
        raise BadInput(f"{path}: cannot read Parquet ({_first_line(e)})") from None


def read_arff(path: Path) -> pd.DataFrame:
    """scipy's ARFF reader; nominal values arrive as bytes (decoded here) and '?' means missing."""
    try:
        text = decode_text(path, path.read_bytes())
        data, _ = arff.loadarff(io.StringIO(text))
    except StopIteration:
        raise BadInput(f"{path}: cannot read ARFF (no @relation/@attribute header)") from None
    except (OSError, ValueError, NotImplementedError, arff.ArffError) as e:
        raise BadInput(f"{path}: cannot read ARFF ({_first_line(e)})") from None
    df = pd.DataFrame(data)
    for c in df.columns:
        if df[c].dtype == object:
            df[c] = df[c].map(_decode_nominal).astype(object)
    return df


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0] if str(e).strip() else type(e).__name__


def _decode_nominal(v: object) -> object:
    s = v.decode("utf-8") if isinstance(v, bytes) else v
    return np.nan if s == "?" else s


def table_columns(path: Path) -> list[str]:
    """A supported file's column names, reading as little as the format allows (Parquet: its schema;
    CSV: the header line; ARFF: the whole file, as scipy reads it)."""
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"{path}: file not found")
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            return list(pq.read_schema(path).names)
        except Exception as e:  # noqa: BLE001 - any unreadable file is the same one-line BadInput
            raise BadInput(f"{path}: cannot read Parquet ({_first_line(e)})") from None
    if suffix == ".csv":
        with open(path, "rb") as f:
            text = decode_text(path, f.read(_SNIFF_BYTES))
        try:
            return [str(c) for c in pd.read_csv(io.StringIO(text), sep=sniff_delimiter(text), nrows=0).columns]
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as e:
            raise BadInput(f"{path}: cannot parse CSV ({_first_line(e)})") from None
    return [str(c) for c in read_table(path).columns]


def table_rows(path: Path) -> int | None:
    """A file's data rows without parsing it (Parquet: its footer; CSV: its line breaks, read in 1 MiB
    blocks, less the header), or None for another format or a file that cannot be read."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.read_metadata(path).num_rows)
        if suffix == ".csv":
            lines, last = 0, b"\n"
            for block in file_blocks(path):
                lines, last = lines + block.count(b"\n"), block[-1:]
            return max(0, lines + (last != b"\n") - 1)
    except Exception:  # noqa: BLE001 - only a size hint: the run itself reports an unreadable file
        return None
    return None
