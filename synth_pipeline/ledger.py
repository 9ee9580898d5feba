"""The release store's append-only, hash-chained ledger: `<root>/ledger.jsonl`, one signed line per
release or refusal record, each holding the sha256 of the line before it.

Editing, removing or reordering a line breaks the chain (and the edited line's signature); deleting a
release or refusal leaves a line whose document is gone; rewriting the whole chain needs the private
key. Lines are appended under an exclusive lock on the ledger file itself and fsynced; a line cut
short by a crash stays visible as an unreadable line, and the next append chains on it.
"""

import fcntl
import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from synth_pipeline.signing import PublicKey, SigningKey, sign, verifies

LEDGER_FILE = "ledger.jsonl"
GENESIS = "0" * 64


@dataclass(frozen=True)
class LedgerLine:
    number: int  # 1-based line number in the file
    record: dict[str, Any] | None  # None: not a JSON object
    sha256: str  # of the line's bytes, without the newline


@dataclass(frozen=True)
class ChainCheck:
    problems: tuple[str, ...]
    notes: tuple[str, ...]
    lines: tuple[LedgerLine, ...]


def _canonical(record: dict[str, Any]) -> bytes:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str).encode()


def read_lines(path: Path) -> list[LedgerLine]:
    out = []
    for i, raw in enumerate(Path(path).read_bytes().split(b"\n"), 1):
        if not raw:
            continue
        try:
            record = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None
        out.append(LedgerLine(i, record if isinstance(record, dict) else None, hashlib.sha256(raw).hexdigest()))
    return out


def append(root: Path, *, kind: str, dataset: str, entry_id: str, verdict: str, document: str,
           document_sha256: str, at: str, key: SigningKey) -> dict[str, Any]:
    """Append one signed line for a release (`document`: its manifest.json) or a refusal record
    (`document`: its refusals/<run_id>.json), paths relative to `root`. Returns the line's record."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / LEDGER_FILE
    created = not path.exists()
    with open(path, "a+b") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        existing = f.read()
        lines = [raw for raw in existing.split(b"\n") if raw]
        record = {"seq": len(lines) + 1, "kind": kind, "dataset": dataset, "id": entry_id, "verdict": verdict,
                  "document": document, "document_sha256": document_sha256, "at": at,
                  "prev_sha256": hashlib.sha256(lines[-1]).hexdigest() if lines else GENESIS,
                  "key_fingerprint": key.fingerprint}
        record["signature"] = sign(key, _canonical(record))
        prefix = b"\n" if existing and not existing.endswith(b"\n") else b""
        f.write(prefix + _canonical(record) + b"\n")
        f.flush()
        os.fsync(f.fileno())
    if created:  # the new directory entry must survive a crash too
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    return record


def verify_chain(path: Path, keys: Sequence[PublicKey]) -> ChainCheck:
    """The whole chain: every line readable, in sequence, chained to the one before, and signed by a
    known key; with trusted keys given, by one of them. Documents are checked by `verify_documents`."""
    lines = read_lines(path)
    by_fp = {k.fingerprint: k for k in keys}
    trusted_given = any(k.trusted for k in keys)
    problems, unknown = [], set()
    prev = GENESIS
    for n, line in enumerate(lines, 1):
        where = f"ledger line {line.number}"
        rec = line.record
        if rec is None:
            problems.append(f"{where}: not a JSON record (edited or cut short)")
            prev = line.sha256
            continue
        if rec.get("prev_sha256") != prev:
            problems.append(f"{where}: does not chain to the line before it (a line was edited, removed or reordered)")
        if rec.get("seq") != n:
            problems.append(f"{where}: sequence number {rec.get('seq')!r}, expected {n} (lines removed or reordered)")
        body = {k: v for k, v in rec.items() if k != "signature"}
        key = by_fp.get(str(rec.get("key_fingerprint")))
        if key is None:
            if trusted_given:
                problems.append(f"{where}: signed by key {str(rec.get('key_fingerprint'))[:16]}…, not a given public key")
            else:
                unknown.add(str(rec.get("key_fingerprint")))
        elif not verifies(key.key, _canonical(body), str(rec.get("signature", ""))):
            problems.append(f"{where}: signature does not match the line (edited)")
        prev = line.sha256
    notes = [f"ledger: signed by {len(unknown)} key(s) not available here; line signatures not checked, "
             f"only the chain (pass --public-key)"] if unknown else []
    return ChainCheck(tuple(problems), tuple(notes), tuple(lines))


def latest(lines: Sequence[LedgerLine]) -> dict[tuple[str, str, str], LedgerLine]:
    """The last line for each (kind, dataset, id): a refusal record is re-recorded as gates add to it."""
    out = {}
    for line in lines:
        if line.record is not None:
            out[(str(line.record.get("kind")), str(line.record.get("dataset")), str(line.record.get("id")))] = line
    return out


def verify_documents(root: Path, lines: Sequence[LedgerLine]) -> list[str]:
    """Every document the ledger lists still exists with the bytes it was recorded with, and every
    release folder and refusal record in the store is in the ledger."""
    from synth_pipeline.hashing import file_sha256

    root = Path(root)
    problems = []
    last = latest(lines)
    for (kind, dataset, entry_id), line in sorted(last.items()):
        name = str(line.record.get("document"))
        doc = root / name
        what = "release" if kind == "release" else "refusal record"
        if Path(name).is_absolute() or ".." in Path(name).parts:
            problems.append(f"ledger line {line.number}: document {name!r} is outside the store")
        elif not doc.is_file():
            problems.append(f"ledger line {line.number}: {what} {dataset}/{entry_id} is listed but {name} is missing (deleted)")
        elif file_sha256(doc) != line.record.get("document_sha256"):
            problems.append(f"{name}: sha256 differs from ledger line {line.number} (changed after it was recorded)")
    listed = {(k, d, i) for (k, d, i) in last}
    for manifest in sorted(root.glob("*/*/manifest.json")):
        dataset, rid = manifest.parent.parent.name, manifest.parent.name
        if ("release", dataset, rid) not in listed:
            problems.append(f"release {dataset}/{rid}: not in the ledger (published outside the pipeline, "
                            f"or its line removed)")
    for record in sorted(root.glob("*/refusals/*.json")):
        if ("refusal", record.parent.parent.name, record.stem) not in listed:
            problems.append(f"refusal record {record.relative_to(root)}: not in the ledger (its line removed)")
    return problems
