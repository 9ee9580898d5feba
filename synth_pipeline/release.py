"""Gate decision, atomic append-only publish, refusal records, manifest and audit.

A release folder is written under a temporary name in the same directory and renamed into place, so
a reader (or a crash) sees either the whole release or nothing. Files are made read-only after
publish; `audit` re-hashes everything the manifest lists.
"""

import fcntl
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd

from synth_pipeline import __version__
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256

GATES = ("dcr_gate", "linkability_gate", "tstr_gate", "inference_gate")
RELEASE_FILES = ("synthetic.parquet", "report.html", "manifest.json")
MRI_RELEASE_FILES = ("synthetic_slices.nii", "positions.csv", "montage.png", "report.html", "manifest.json")
REQUIRED_FILES = {"tabular": RELEASE_FILES, "mri": MRI_RELEASE_FILES}  # by the manifest's "arm"
TRACKED_PACKAGES = (
    "numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "sdv", "sdmetrics", "rdt", "ctgan", "copulas",
    "imbalanced-learn", "anonymeter", "great-expectations", "torch", "dagster",
)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$")


class ReleaseExists(RuntimeError):
    """The release id is already published; the store is append-only."""


@dataclass(frozen=True)
class GateRecord:
    """A gate result as read back from the check store, with what it was computed on."""

    gate: str
    passed: bool
    candidate_sha256: str | None
    thresholds_sha256: str | None
    run_id: str | None
    reason: str = ""


@dataclass(frozen=True)
class AuditResult:
    ok: bool
    problems: tuple[str, ...]


def safe_name(value: str, what: str) -> str:
    """Dataset names and release ids become directory names: refuse anything that could escape."""
    if not _SAFE_NAME.match(value or "") or ".." in value:
        raise BadInput(f"{what} {value!r} is not a safe name (letters, digits, '.', '_', '-'; no '..' or '/')")
    return value


def gate_problems(
    records: Mapping[str, GateRecord | None], *, candidate_sha256: str, thresholds_sha256: str,
    gates: Sequence[str] = GATES,
) -> list[str]:
    """Why this candidate may not be published; empty means every gate passed *for this candidate
    under these thresholds*. A missing, stale or failed record is a problem, never a pass."""
    problems = []
    for gate in gates:
        rec = records.get(gate)
        if rec is None:
            problems.append(f"{gate}: no result for this candidate (check did not run)")
        elif rec.candidate_sha256 != candidate_sha256:
            problems.append(f"{gate}: latest result is for another candidate (stale, run {rec.run_id})")
        elif rec.thresholds_sha256 != thresholds_sha256:
            problems.append(f"{gate}: latest result used other thresholds (run {rec.run_id})")
        elif not rec.passed:
            problems.append(f"{gate}: failed: {rec.reason}")
    return problems


def release_id_for(day: str, generator: str, candidate_sha256: str) -> str:
    """Deterministic: the same day and candidate bytes map to one id, so a repeated run finds it."""
    return f"{day}-{generator}-{candidate_sha256[:12]}"


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def publish(
    root: Path, dataset: str, release_id: str, files: Mapping[str, bytes], manifest: dict[str, Any]
) -> Path:
    """Write `files` plus `manifest.json` (with every file's sha256) atomically as
    `<root>/<dataset>/<release_id>/`. Raises ReleaseExists if that id is already published."""
    dataset_dir = Path(root) / safe_name(dataset, "dataset")
    final = dataset_dir / safe_name(release_id, "release id")
    dataset_dir.mkdir(parents=True, exist_ok=True)
    if final.exists():
        raise ReleaseExists(str(final))
    _remove_orphaned_temps(dataset_dir)
    tmp = dataset_dir / f".tmp-{release_id}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        hashes = {}
        for name, data in sorted(files.items()):
            _write(tmp / name, data)
            hashes[name] = file_sha256(tmp / name)
        body = {**manifest, "release_id": release_id, "files": hashes}
        _write(tmp / "manifest.json", (json.dumps(body, indent=2, sort_keys=True, default=str) + "\n").encode())
        for p in tmp.iterdir():
            p.chmod(0o444)
        _fsync_dir(tmp)
        try:
            os.rename(tmp, final)
        except OSError as e:
            raise ReleaseExists(str(final)) from e
        _fsync_dir(dataset_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_orphaned_temps(dataset_dir: Path) -> None:
    """Temp folders of publishers that died (killed mid-publish) are never releases: remove them.
    A live publisher's temp folder (its pid is in the name) is left alone."""
    for tmp in dataset_dir.glob(".tmp-*"):
        try:
            pid = int(tmp.name.rsplit("-", 2)[-2])
        except ValueError:
            continue
        if not _pid_alive(pid):
            shutil.rmtree(tmp, ignore_errors=True)


def record_refusal(root: Path, dataset: str, run_id: str, entry: dict[str, Any]) -> Path:
    """Add one refusal entry (a failed gate, the generator, or the release step's own refusal) to
    `<root>/<dataset>/refusals/<run_id>.json`, and re-render its readable `<run_id>.html`. Several gate checks of one run may refuse in
    parallel processes, so entries are merged under a file lock and written atomically."""
    folder = Path(root) / safe_name(dataset, "dataset") / "refusals"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{safe_name(run_id, 'run id')}.json"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        doc = json.loads(path.read_text()) if path.exists() else {
            "dataset": dataset, "run_id": run_id, "verdict": "refused", "published": False, "entries": []
        }
        doc["entries"] = [e for e in doc["entries"] if e.get("gate") != entry.get("gate")] + [entry]
        doc["failing_gates"] = sorted({e["gate"] for e in doc["entries"] if not e.get("passed", False)})
        doc["updated_at"] = utc_now()
        from synth_pipeline.report import render_refusal  # matplotlib: only loaded when refusing

        _replace(path, (json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n").encode())
        _replace(path.with_suffix(".html"), render_refusal(doc).encode())
    return path


def _replace(path: Path, data: bytes) -> None:
    """Atomically replace `path`: readers see the old or the new file, never a partial one."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    _write(tmp, data)
    os.replace(tmp, path)


def package_versions(names: Sequence[str] = TRACKED_PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for n in names:
        try:
            out[n] = metadata.version(n)
        except metadata.PackageNotFoundError:
            out[n] = None
    return out


def code_version() -> dict[str, Any]:
    """Package version plus the git commit the code ran from (and whether the tree was dirty)."""
    here = Path(__file__).resolve().parent.parent
    info: dict[str, Any] = {"package": __version__, "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
        info.update(git_commit=commit, git_dirty=bool(dirty))
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def audit(release_dir: Path) -> AuditResult:
    """Re-verify a published release: manifest present and readable, every listed file present with
    its recorded sha256, no unlisted file, verdict 'published'."""
    d = Path(release_dir)
    problems: list[str] = []
    mpath = d / "manifest.json"
    if not d.is_dir():
        return AuditResult(False, (f"{d}: not a directory",))
    if not mpath.is_file():
        return AuditResult(False, (f"{mpath}: missing",))
    try:
        manifest = json.loads(mpath.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        return AuditResult(False, (f"{mpath}: unreadable ({e})",))
    files = manifest.get("files") or {}
    for name in REQUIRED_FILES.get(manifest.get("arm", "tabular"), RELEASE_FILES):
        if name != "manifest.json" and name not in files:
            problems.append(f"{name}: not listed in manifest")
    for name, expected in sorted(files.items()):
        p = d / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(p) != expected:
            problems.append(f"{name}: sha256 differs from manifest (tampered)")
    extra = sorted(p.name for p in d.iterdir() if p.name != "manifest.json" and p.name not in files)
    problems += [f"{name}: not listed in manifest (unexpected file)" for name in extra]
    if manifest.get("verdict") != "published":
        problems.append(f"manifest verdict is {manifest.get('verdict')!r}, not 'published'")
    if manifest.get("release_id") != d.name:
        problems.append(f"manifest release_id {manifest.get('release_id')!r} does not match folder {d.name!r}")
    return AuditResult(not problems, tuple(problems))


def exact_row_matches(candidate: pd.DataFrame, reference: pd.DataFrame) -> int:
    """How many candidate rows equal some reference row on every column (missing equals missing).
    The last line of defence: no released row may be a real training row."""
    cols = list(reference.columns)
    ref = set(pd.util.hash_pandas_object(reference[cols], index=False).tolist())
    cand = pd.util.hash_pandas_object(candidate[cols], index=False)
    return int(cand.isin(ref).sum())
