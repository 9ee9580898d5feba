"""Per-run folders for the intermediates that hold real rows (raw table, validated table, splits).

Each run writes only under `<root>/<run_id>/`, which starts with an owner record: the run id, the
host and the process that runs the run (with its start time, so a reused pid is not mistaken for
it), and whether the folder is to be kept. The folder is removed when its run ends; a folder
whose run was killed is removed by the next run that sweeps the same root, once its owner process
is gone or its run is recorded as finished. A folder with `keep` set is never removed here.
"""

import json
import multiprocessing
import os
import shutil
import socket
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

OWNER = ".owner.json"
WORK_DIR_ENV = "SYNTH_WORK_DIR"


@dataclass(frozen=True)
class Owner:
    run_id: str
    host: str
    pid: int
    started: str | None
    keep: bool


def default_root(cli: bool = False) -> Path:
    """$SYNTH_WORK_DIR, else `.work` (Dagster mode, next to the instance's code) or the system temp
    folder's `synth-work` (the CLI)."""
    env = os.environ.get(WORK_DIR_ENV)
    if env:
        return Path(env)
    return Path(tempfile.gettempdir()) / "synth-work" if cli else Path(".work")


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


def read_owner(folder: Path) -> Owner | None:
    try:
        return Owner(**json.loads((folder / OWNER).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def claim(root: Path, run_id: str, *, keep: bool = False) -> Path:
    """`<root>/<run_id>/` with its owner record written before any data (idempotent)."""
    folder = Path(root) / run_id
    if read_owner(folder) is None:
        folder.mkdir(parents=True, exist_ok=True)
        pid = run_process()
        owner = Owner(run_id=run_id, host=socket.gethostname(), pid=pid, started=_started(pid), keep=keep)
        tmp = folder / f"{OWNER}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(asdict(owner)))
        os.replace(tmp, folder / OWNER)
    return folder


def remove(folder: Path) -> bool:
    """Remove one run's folder unless its owner asked to keep it; True if it is gone."""
    owner = read_owner(folder)
    if owner is not None and owner.keep:
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return not folder.exists()


def remove_owned(root: Path, pid: int) -> list[Path]:
    """Remove the folders under `root` whose runs process `pid` ran (unless kept): what a multiprocess
    run's owner does when the run is over, since no step process saw the whole run."""
    root = Path(root)
    if not root.is_dir():
        return []
    host = socket.gethostname()
    owned = [f for f in root.iterdir() if f.is_dir() and (o := read_owner(f)) is not None and o.pid == pid
             and o.host == host]
    return [f for f in owned if remove(f)]


def sweep(root: Path, finished: Callable[[str], bool], *, spare: str | None = None) -> list[Path]:
    """Remove every run folder under `root` whose run is over: recorded as finished, or its owner
    process (on this host) gone. `spare` (the caller's own run) and folders without an owner
    record are left alone."""
    removed = []
    root = Path(root)
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
