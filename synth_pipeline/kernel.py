"""The release kernel both arms call — judge the gate results, build the manifest, publish or refuse —
plus the atomic append-only publish, refusal records and audit it rests on.

A release folder is written under a temporary name in the same directory and renamed into place, so
a reader (or a crash) sees either the whole release or nothing. Files are made read-only after
publish; the manifest is signed (synth_pipeline/signing.py) and every release and refusal is appended
to the store's hash-chained ledger (synth_pipeline/ledger.py). `audit` re-hashes everything the
manifest lists; synth_pipeline/audit.py adds the signature, ledger and consistency checks.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from synth_pipeline import __version__, ledger
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import file_sha256
from synth_pipeline.signing import SIGNATURE_FILE, load_signing_key, signature_document, signing_fields

GATES = ("dcr_gate", "linkability_gate", "tstr_gate", "inference_gate", "fidelity_gate")
RELEASE_FILES = ("synthetic.parquet", "report.html", "manifest.json")
MRI_RELEASE_FILES = ("synthetic_slices.nii", "positions.csv", "montage.png", "report.html", "manifest.json")
REQUIRED_FILES = {"tabular": RELEASE_FILES, "mri": MRI_RELEASE_FILES}  # by the manifest's "arm"
MANIFEST_VERSION = 1  # of manifest.json and refusal records: docs/manifest.schema.json, docs/refusal.schema.json
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
    notes: tuple[str, ...] = ()  # what was not or only partly checked (e.g. no ledger, no trusted key)


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
    """Write `files` plus `manifest.json` (with every file's sha256) and its signature `manifest.sig`
    atomically as `<root>/<dataset>/<release_id>/`, then append it to the store's ledger. Raises
    ReleaseExists if that id is already published."""
    dataset_dir = Path(root) / safe_name(dataset, "dataset")
    final = dataset_dir / safe_name(release_id, "release id")
    key = load_signing_key()
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
        body = {**manifest, "manifest_version": MANIFEST_VERSION, "release_id": release_id, "files": hashes,
                "signing": signing_fields(key)}
        manifest_bytes = (json.dumps(body, indent=2, sort_keys=True, default=str) + "\n").encode()
        _write(tmp / "manifest.json", manifest_bytes)
        _write(tmp / SIGNATURE_FILE, signature_document(key, manifest_bytes))
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
    ledger.append(Path(root), kind="release", dataset=dataset, entry_id=release_id, verdict="published",
                  document=f"{dataset}/{release_id}/manifest.json",
                  document_sha256=hashlib.sha256(manifest_bytes).hexdigest(), at=utc_now(), key=key)
    return final


@dataclass(frozen=True)
class Decision:
    """What the kernel did with one candidate: published (release id and folder) or refused (why)."""

    published: bool
    reason: str = ""
    release_id: str | None = None
    path: Path | None = None
    manifest: Mapping[str, Any] | None = None


Build = Callable[[str, dict[str, Any]], tuple[dict[str, bytes], dict[str, Any]]]


def release_candidate(
    *, root: Path, arm: str, dataset: str, model: str, day: str, candidate_sha256: str, settings_sha256: str,
    gates: Sequence[str], records: Mapping[str, GateRecord | None], results: Mapping[str, dict],
    last_line: Sequence[str], config: Mapping[str, Any], overrides: Sequence[Mapping[str, Any]],
    dagster: Mapping[str, Any], packages: Sequence[str], build: Build,
) -> Decision:
    """Judge → manifest → publish, the same for both arms. Refuses unless every gate in `gates` passed
    for *this* candidate under *these* settings in this run (`records`) and the arm's last-line check
    found nothing (`last_line`: its problems). `build(release_id, manifest)` returns the arm's files and
    the manifest fields only it knows (data description, plots, reports); the kernel writes the shared
    ones. An existing folder with the same id counts as published only if it holds these very bytes."""
    problems = [*gate_problems(records, candidate_sha256=candidate_sha256, thresholds_sha256=settings_sha256,
                               gates=gates), *last_line]
    if problems:
        return Decision(False, "; ".join(problems))
    release_id = release_id_for(day, model, candidate_sha256)
    manifest: dict[str, Any] = {
        "arm": arm, "verdict": "published", "dataset": dataset, "created_at": utc_now(),
        "synthetic_sha256": candidate_sha256, "config": dict(config), "seed": config.get("seed"),
        "thresholds": config.get("thresholds"), "overrides": list(overrides), "code_version": code_version(),
        "packages": package_versions(packages), "environment": environment(),
        "gates": [results.get(g, {}) for g in gates], "dagster": dict(dagster),
    }
    files, own = build(release_id, manifest)
    manifest |= own
    try:
        path = publish(root, dataset, release_id, files, manifest)
    except ReleaseExists:
        from synth_pipeline.release_contents import existing_release_problems

        path = Path(root) / dataset / release_id
        if mismatch := existing_release_problems(path, files, candidate_sha256):
            return Decision(False, f"release {release_id} already exists with other contents: {'; '.join(mismatch)}")
    return Decision(True, release_id=release_id, path=path, manifest=manifest)


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


def record_refusal(root: Path, dataset: str, run_id: str, entry: dict[str, Any] | None, *,
                   gates: Mapping[str, dict] | None = None, run: Mapping[str, Any] | None = None) -> Path | None:
    """Add one refusal entry (a failed gate, the generator, or the release step's own refusal) to
    `<root>/<dataset>/refusals/<run_id>.json`, and re-render its readable `<run_id>.html`. `gates` adds
    every gate result the run has so far (passing ones too) and `run` the run's config and seed, so the
    record alone says what was tried and how each gate judged it; with `entry=None` they are added only
    to a record that exists (a gate that passes after another refused). Several gate checks of one run
    may refuse in parallel processes, so entries are merged under a file lock and written atomically;
    each version of the record is appended to the store's ledger."""
    folder = Path(root) / safe_name(dataset, "dataset") / "refusals"
    path = folder / f"{safe_name(run_id, 'run id')}.json"
    if entry is None and not path.exists():  # a passing gate of a run nobody refused: nothing to join
        return None
    key = load_signing_key()
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if entry is None and not path.exists():
            return None
        doc = json.loads(path.read_text()) if path.exists() else {
            "dataset": dataset, "run_id": run_id, "verdict": "refused", "published": False, "entries": []
        }
        doc["manifest_version"] = MANIFEST_VERSION
        doc["gates"] = {**doc.get("gates", {}), **(gates or {})}
        doc.update(run or {})
        if entry is not None:
            doc["entries"] = [e for e in doc["entries"] if e.get("gate") != entry.get("gate")] + [entry]
        doc["failing_gates"] = sorted({e["gate"] for e in doc["entries"] if not e.get("passed", False)})
        doc["updated_at"] = utc_now()
        from synth_pipeline.report import render_refusal  # matplotlib: only loaded when refusing

        data = (json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n").encode()
        _replace(path, data)
        _replace(path.with_suffix(".html"), render_refusal(doc).encode())
        ledger.append(Path(root), kind="refusal", dataset=dataset, entry_id=run_id, verdict="refused",
                      document=f"{dataset}/refusals/{path.name}", document_sha256=hashlib.sha256(data).hexdigest(),
                      at=doc["updated_at"], key=key)
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


NUMERIC_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
               "ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "CUBLAS_WORKSPACE_CONFIG")


def environment() -> dict[str, Any]:
    """What of the machine can change a release's bytes (see the README's reproducibility notes):
    CPU model and instruction set, torch's threads and deterministic flag (when torch ran), BLAS settings."""
    import platform
    import sys

    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    env: dict[str, Any] = {"cpu": cpu, "cpu_count": os.cpu_count(), "machine": platform.machine(),
                           "python": platform.python_version(), **{v: os.environ.get(v) for v in NUMERIC_ENV}}
    torch = sys.modules.get("torch")
    if torch is not None:
        env.update(torch=torch.__version__, torch_cpu_capability=torch.backends.cpu.get_cpu_capability(),
                   torch_threads=torch.get_num_threads(),
                   torch_deterministic=torch.are_deterministic_algorithms_enabled(),
                   cuda=torch.cuda.get_device_name() if torch.cuda.is_available() else None)
    return env


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
    """The files part of an audit: manifest present and readable, every listed file present with its
    recorded sha256, no unlisted file (the signature file aside), verdict 'published'. The full audit
    (signature, ledger, data consistency, Dagster record) is synth_pipeline.audit.audit_release."""
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
    if not isinstance(manifest, dict):
        return AuditResult(False, (f"{mpath}: not a JSON object",))
    files = manifest.get("files") or {}
    if not isinstance(files, dict) or not all(isinstance(v, str) for v in files.values()):
        return AuditResult(False, (f"{mpath}: 'files' is not a mapping of file name to sha256",))
    for name in REQUIRED_FILES.get(manifest.get("arm", "tabular"), RELEASE_FILES):
        if name != "manifest.json" and name not in files:
            problems.append(f"{name}: not listed in manifest")
    for name, expected in sorted(files.items()):
        p = d / name
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif file_sha256(p) != expected:
            problems.append(f"{name}: sha256 differs from manifest (tampered)")
    extra = sorted(p.name for p in d.iterdir() if p.name not in ("manifest.json", SIGNATURE_FILE) and p.name not in files)
    problems += [f"{name}: not listed in manifest (unexpected file)" for name in extra]
    if manifest.get("verdict") != "published":
        problems.append(f"manifest verdict is {manifest.get('verdict')!r}, not 'published'")
    if manifest.get("release_id") != d.name:
        problems.append(f"manifest release_id {manifest.get('release_id')!r} does not match folder {d.name!r}")
    return AuditResult(not problems, tuple(problems))
