"""Per-run folders for the intermediates that hold real rows (raw table, validated table, splits).

Each run writes only under `<root>/<run_id>/`, which starts with an owner record: the run id, the
host and the process that runs the run (with its start time, so a reused pid is not mistaken for
it), and whether the folder is to be kept. The folder is removed when its run ends; a folder
whose run was killed is removed by the next run that sweeps the same root, once its owner process
is gone or its run is recorded as finished. A folder with `keep` set is never removed here.

The root is a local folder (a PVC in Kubernetes) or any fsspec URL (`s3://bucket/work`,
`memory://` in tests), as a universal_pathlib UPath; credentials come from the environment as
fsspec's drivers read them (an s3:// root needs s3fs in the image).
"""

import json
import multiprocessing
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from os import PathLike
from pathlib import Path
from typing import IO

from upath import UPath

OWNER = ".owner.json"
WORK_DIR_ENV = "SYNTH_WORK_DIR"
STEP_POD_ENV = "DAGSTER_RUN_STEP_KEY"  # set by dagster-k8s's k8s_job_executor in every step's own pod


@dataclass(frozen=True)
class Owner:
    run_id: str
    host: str
    pid: int
    started: str | None
    keep: bool


def default_root(cli: bool = False) -> UPath:
    """$SYNTH_WORK_DIR (a path or an fsspec URL), else `.work` (Dagster mode, next to the instance's
    code) or the system temp folder's `synth-work` (the CLI)."""
    env = os.environ.get(WORK_DIR_ENV)
    if env:
        return UPath(env)
    return UPath(tempfile.gettempdir()) / "synth-work" if cli else UPath(".work")


def is_local(path: UPath) -> bool:
    """A path on this machine's file systems (a PVC included), where rename is atomic."""
    return isinstance(path, Path)


def write_whole(target: UPath, write: Callable[[IO[bytes]], None]) -> None:
    """Write `target` so that no reader ever sees part of it: locally a temporary name renamed into
    place; on an object store the object itself, which appears only when its upload completes."""
    if not is_local(target):
        with target.open("wb") as f:
            write(f)
        return
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            write(f)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def rmtree(folder: UPath) -> None:
    """Remove a folder and everything under it (an object store: every object under the prefix)."""
    if is_local(folder):
        shutil.rmtree(folder, ignore_errors=True)
    elif folder.exists():
        folder.fs.rm(folder.path, recursive=True)


def run_process() -> int:
    """The process that runs the whole run: this one, or, inside a step process spawned by
    Dagster's multiprocess executor, its parent (the run worker)."""
    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else os.getpid()


def _started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), or None where unknown."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _alive(owner: Owner) -> bool:
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return owner.started is None or _started(owner.pid) in (None, owner.started)


def read_owner(folder: UPath) -> Owner | None:
    try:
        return Owner(**json.loads((folder / OWNER).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def run_folder(root: str | PathLike | UPath, run_id: str) -> UPath:
    return UPath(root) / run_id


def claim(root: str | PathLike | UPath, run_id: str, *, keep: bool = False) -> UPath:
    """`<root>/<run_id>/` with its owner record written before any data (idempotent)."""
    folder = run_folder(root, run_id)
    if read_owner(folder) is None:
        folder.mkdir(parents=True, exist_ok=True)
        pid = run_process()
        owner = Owner(run_id=run_id, host=socket.gethostname(), pid=pid, started=_started(pid), keep=keep)
        write_whole(folder / OWNER, lambda f: f.write(json.dumps(asdict(owner)).encode()))
    return folder


def runs_whole_run(owner: Owner) -> bool:
    """Whether this process is the one that runs the owner's whole run, so that its end is the run's
    end. Never in a step pod of the k8s_job_executor: there every step is its own process (often
    pid 1 on its own host), and the run-end sensors remove the folder."""
    return STEP_POD_ENV not in os.environ and owner.pid == os.getpid() and owner.host == socket.gethostname()


def remove(folder: UPath) -> bool:
    """Remove one run's folder unless its owner asked to keep it; True if it is gone."""
    owner = read_owner(folder)
    if owner is not None and owner.keep:
        return False
    rmtree(folder)
    return not folder.exists()


def remove_owned(root: str | PathLike | UPath, pid: int) -> list[UPath]:
    """Remove the folders under `root` whose runs process `pid` ran (unless kept): what a multiprocess
    run's owner does when the run is over, since no step process saw the whole run."""
    root = UPath(root)
    if not root.is_dir():
        return []
    host = socket.gethostname()
    owned = [f for f in root.iterdir() if f.is_dir() and (o := read_owner(f)) is not None and o.pid == pid
             and o.host == host]
    return [f for f in owned if remove(f)]


def sweep(root: str | PathLike | UPath, finished: Callable[[str], bool], *, spare: str | None = None) -> list[UPath]:
    """Remove every run folder under `root` whose run is over: recorded as finished, or its owner
    process (on this host) gone. `spare` (the caller's own run) and folders without an owner
    record are left alone."""
    removed = []
    root = UPath(root)
    if not root.is_dir():
        return removed
    host = socket.gethostname()
    for folder in root.iterdir():
        owner = read_owner(folder) if folder.is_dir() and folder.name != spare else None
        if owner is None or owner.keep:
            continue
        if finished(owner.run_id) or (owner.host == host and not _alive(owner)):
            if remove(folder):
                removed.append(folder)
    return removed
