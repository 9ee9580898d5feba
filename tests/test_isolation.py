"""Many runs on one Dagster instance: each reads only its own gate results and lineage, a refusal is
final (never retried), and intermediates holding real rows are gone when a run ends."""

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest

from assets.operations import RETRY, nightly_release
from assets.refusal import refuse
from resources import ReleaseStore
from synth_pipeline import intermediates
from synth_pipeline.data import BUNDLED

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

LAUNCH = r"""
import json, sys
import dagster as dg
from synth_pipeline.definitions import defs
request = json.loads(sys.argv[1])
result = defs.resolve_job_def("release_job").execute_in_process(
    run_config=request["run_config"], tags=request["tags"], instance=dg.DagsterInstance.get(), raise_on_error=False)
for event in result.all_events:
    if event.is_step_failure:
        print("STEP FAILED:", event.step_key, event.step_failure_data.error.to_string()[-1500:], file=sys.stderr)
sys.exit(0 if result.success else 1)
"""


def _home(tmp_path: Path) -> Path:
    """A fresh instance with its storage created once, as the webserver or daemon does before any run
    (several processes creating a new sqlite schema at the same moment race on it)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "dagster.yaml", home / "dagster.yaml")
    dg.DagsterInstance.from_config(str(home)).get_runs(limit=1)
    return home


def _start(args: list[str], tmp_path: Path, env: dict, name: str) -> subprocess.Popen:
    """A process whose stderr goes to `<tmp>/<name>.log` (a pipe nobody reads would fill and block it)."""
    with open(tmp_path / f"{name}.log", "w") as log:
        return subprocess.Popen(args, cwd=tmp_path, env=env, stderr=log, stdout=subprocess.DEVNULL)


def _failures(tmp_path: Path) -> list[str]:
    return [line for log in tmp_path.glob("*.log") for line in log.read_text().splitlines()
            if "STEP FAILED" in line or "rror" in line][-20:]


def _env(home: Path, **extra: str) -> dict:
    return {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": str(ROOT), **extra}


def _manifests(root: Path) -> dict[str, dict]:
    found = {}
    for m in root.glob("*/*/manifest.json"):
        manifest = json.loads(m.read_text())
        assert manifest["dataset"] not in found, f"two releases of {manifest['dataset']}"
        found[manifest["dataset"]] = manifest
    return found


def _assert_each_run_has_its_own_lineage(home: Path, manifests: dict[str, dict], datasets: list[str]) -> None:
    assert sorted(manifests) == sorted(datasets)
    instance = dg.DagsterInstance.from_config(str(home))
    runs = {r.run_id: r for r in instance.get_runs()}
    assert len({m["dagster"]["run_id"] for m in manifests.values()}) == len(datasets)
    for dataset, manifest in manifests.items():
        run_id = manifest["dagster"]["run_id"]
        run = runs[run_id]
        assert run.job_name == "release_job" and run.tags["dataset"] == dataset
        lineage = manifest["dagster"]["lineage"]
        assert None not in lineage.values(), lineage
        assert {entry["run_id"] for entry in lineage.values()} == {run_id}, f"{dataset}: lineage names other runs"
        assert all(g["passed"] for g in manifest["gates"])


# Isolation does not depend on how hard each gate attacks: fewer linkability attacks keep these
# concurrent runs affordable on a 2-core machine (the gates still run, and must pass, for real).
CHEAP = {"link_attacks": 200, "generator": "gaussian_copula"}


def test_the_schedules_runs_for_every_bundled_dataset_launched_at_once_all_publish(tmp_path, monkeypatch):
    """The nightly schedule's own run requests (the bundled tables' catalogue, cheaper attacks), all
    started together against one (sqlite) instance."""
    home = _home(tmp_path)
    catalogue = tmp_path / "catalogue.yaml"
    catalogue.write_text("datasets:\n" + "".join(f"  - name: {d}\n    path: {d}\n    link_attacks: {CHEAP['link_attacks']}\n"
                                                 f"    generator: {CHEAP['generator']}\n"
                                                 for d in sorted(BUNDLED)))
    monkeypatch.setenv("SYNTH_CATALOGUE", str(catalogue))
    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 25, 2, tzinfo=timezone.utc))
    requests = list(nightly_release(context))
    assert sorted(r.tags["dataset"] for r in requests) == sorted(BUNDLED)
    procs = [_start([PYTHON, "-c", LAUNCH, json.dumps({"run_config": r.run_config, "tags": r.tags})], tmp_path,
                    _env(home), r.tags["dataset"]) for r in requests]
    codes = [p.wait(timeout=900) for p in procs]
    assert codes == [0] * len(procs), _failures(tmp_path)
    _assert_each_run_has_its_own_lineage(home, _manifests(tmp_path / "releases"), sorted(BUNDLED))
    assert [p for p in (tmp_path / ".work").iterdir()] == []  # every run's intermediates removed at its end


def test_three_concurrent_cli_releases_of_different_datasets_on_one_instance_all_publish(tmp_path):
    home, work = _home(tmp_path), tmp_path / "work"
    datasets = ["flchain", "actg175", "gbsg2"]
    config = tmp_path / "cheap.json"
    config.write_text(json.dumps(CHEAP))
    procs = [_start([PYTHON, "-m", "synth_pipeline.cli", "release", "--data", d, "--config", str(config),
                     "--out", str(tmp_path / "out")],
                    tmp_path, _env(home, SYNTH_WORK_DIR=str(work)), d) for d in datasets]
    codes = [p.wait(timeout=900) for p in procs]
    assert codes == [0, 0, 0], _failures(tmp_path)
    _assert_each_run_has_its_own_lineage(home, _manifests(tmp_path / "out"), datasets)
    assert list(work.iterdir()) == []


def test_a_refusal_is_never_retried_under_the_jobs_retry_policy(tmp_path):
    @dg.asset
    def refusing(context: dg.AssetExecutionContext, release_store: ReleaseStore) -> None:
        refuse(context, release_store, "toy", "release", "gate results missing", config={"generator": "toy", "seed": 0})

    job = dg.define_asset_job("refusing_job", selection="refusing", op_retry_policy=RETRY)
    defs = dg.Definitions(assets=[refusing], jobs=[job], resources={"release_store": ReleaseStore(root=str(tmp_path))})
    result = defs.resolve_job_def("refusing_job").execute_in_process(raise_on_error=False)
    assert not result.success
    kinds = [e.event_type_value for e in result.all_events]
    assert "STEP_FAILURE" in kinds and "STEP_UP_FOR_RETRY" not in kinds and "STEP_RESTARTED" not in kinds
    record = json.loads((tmp_path / "toy" / "refusals" / f"{result.run_id}.json").read_text())
    assert record["entries"][0]["gate"] == "release"


def test_every_step_refuses_through_the_one_route():
    """No asset raises its own Failure: refusals go through assets/refusal.py (allow_retries=False)."""
    raising = [p.name for p in (ROOT / "assets").glob("*.py")
               if p.name != "refusal.py" and ("dg.Failure(" in p.read_text() or "record_refusal(" in p.read_text())]
    assert raising == []


def _exited_pid() -> int:
    proc = subprocess.Popen([PYTHON, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_killed_runs_folder_is_swept_and_a_live_or_kept_one_is_not(tmp_path, monkeypatch):
    live = intermediates.claim(tmp_path, "live-run")
    kept = intermediates.claim(tmp_path, "kept-run", keep=True)
    dead = intermediates.claim(tmp_path, "killed-run")
    (dead / "raw_table.parquet").write_bytes(b"real rows")
    owner = json.loads((dead / intermediates.OWNER).read_text())
    (dead / intermediates.OWNER).write_text(json.dumps({**owner, "pid": _exited_pid(), "started": None}))
    finished = intermediates.claim(tmp_path, "finished-run")
    removed = intermediates.sweep(tmp_path, lambda run_id: run_id == "finished-run")
    assert sorted(p.name for p in removed) == ["finished-run", "killed-run"]
    assert live.is_dir() and kept.is_dir() and not dead.exists() and not finished.exists()
    assert not intermediates.remove(kept) and kept.is_dir()  # keep_intermediates wins


FIRST = ["Amelia", "Bruno", "Chiara", "Dmitri", "Elif", "Farah", "Gustav", "Hana", "Ivo", "Jonas"]
LAST = ["Oyelaran", "Marchetti", "Lindqvist", "Kowalczyk", "Haddad", "Brennan", "Takahashi", "Novak", "Duarte",
        "Fitzgerald", "Ramaswamy", "Okonkwo", "Vasquez", "Halloran", "Petrenko", "Abernathy", "Castellanos",
        "Nakamura", "Oduya", "Wrightson"]
DOMAIN = "ward7-clinic.example.org"


def _files(root: Path, skip: Path | None = None):
    for p in root.rglob("*"):
        if p.is_file() and (skip is None or not p.is_relative_to(skip)):
            yield p


def test_a_dagster_run_leaves_no_identifier_and_no_real_row_outside_the_release_store(tmp_path, monkeypatch,
                                                                                      flchain_sample):
    """release_job itself (not the CLI), published and refused, on a table with names and e-mails."""
    rows, schema = flchain_sample
    table = rows.copy()
    names = [f"{FIRST[i % 10]} {LAST[(i // 10) % 20]}-{i}" for i in range(len(table))]
    table.insert(0, "patient_name", names)
    table.insert(1, "email", [f"{n.split()[0].lower()}.{i}@{DOMAIN}" for i, n in enumerate(names)])
    source = tmp_path / "input" / "ward7.csv"
    source.parent.mkdir()
    table.to_csv(source, index=False)
    home, scratch = _home(tmp_path), tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.chdir(tmp_path)  # the code location's relative defaults: .work/ and releases/
    monkeypatch.setattr("tempfile.tempdir", str(scratch))  # whatever a step puts in the temp folder lands here
    from synth_pipeline.definitions import defs

    job = defs.resolve_job_def("release_job")
    instance = dg.DagsterInstance.from_config(str(home))
    outcomes = {}
    for generator in ("gaussian_copula", "copy"):
        settings = {"data": str(source), "target": schema.target, "generator": generator, "link_attacks": 300,
                    "id_columns": ["patient_name", "email"]}
        result = job.execute_in_process(run_config={"resources": {"settings": {"config": settings}}},
                                        instance=instance, tags={"dataset": "ward7"}, raise_on_error=False)
        outcomes[generator] = result.success
    assert outcomes == {"gaussian_copula": True, "copy": False}  # one published, one refused
    releases = tmp_path / "releases"
    assert list(releases.glob("ward7/*/synthetic.parquet")) and list(releases.glob("ward7/refusals/*.json"))

    scanned = [p for root in (home, tmp_path / ".work", scratch, tmp_path) for p in _files(root, releases)
               if not p.is_relative_to(source.parent)]
    tables = [p for p in scanned if p.suffix in (".parquet", ".npz", ".csv", ".arff", ".pkl")]
    assert tables == [], f"intermediates left behind: {tables}"
    assert any(p.suffix == ".db" for p in scanned)  # the instance's storage itself was searched
    needles = [DOMAIN.encode(), *(n.encode() for n in names)]
    for p in [*scanned, *_files(releases)]:
        data = p.read_bytes()
        leaked = [n.decode() for n in needles if n in data]
        assert not leaked, f"{p}: holds identifier values {leaked[:3]}"


def test_the_run_end_sensor_removes_a_multiprocess_runs_folder(tmp_path, monkeypatch):
    """After a multiprocess run (no process tears down the whole run) the daemon's run-status sensor
    removes the run's folder; evaluated here the way Dagster documents for testing such sensors."""
    from assets.operations import INTERMEDIATES_CLEANUP

    monkeypatch.chdir(tmp_path)

    @dg.asset
    def toy() -> int:
        return 1

    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([toy], instance=instance)
    folder = intermediates.claim(intermediates.default_root(), result.run_id)
    (folder / "train_split.parquet").write_bytes(b"real rows")
    [end] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
    [on_success] = [s for s in INTERMEDIATES_CLEANUP if s.name == "remove_intermediates_on_success"]
    context = dg.build_run_status_sensor_context(sensor_name=on_success.name, dagster_instance=instance,
                                                 dagster_run=instance.get_run_by_id(result.run_id),
                                                 dagster_event=end.dagster_event)
    on_success(context)
    assert not folder.exists()


def _started_cli(tmp_path: Path, work: Path, seen: set[Path]) -> tuple[subprocess.Popen, Path]:
    """A CLI release, returned once its run folder holds the raw table (real rows on disk)."""
    import signal
    import time

    proc = subprocess.Popen([PYTHON, "-m", "synth_pipeline.cli", "release", "--data", "actg175",
                             "--generator", "gaussian_copula", "--out", str(tmp_path / "out")],
                            env={**_env(tmp_path, SYNTH_WORK_DIR=str(work)), "DAGSTER_HOME": ""},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    for _ in range(600):
        fresh = [p.parent for p in work.glob("*/raw_table.parquet") if p.parent not in seen]
        if fresh:
            return proc, fresh[0]
        if proc.poll() is not None:
            break
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    pytest.fail("the CLI run never wrote its raw table")


def test_a_killed_cli_runs_real_rows_are_removed_by_the_next_run(tmp_path):
    import signal

    work = tmp_path / "work"
    killed, folder = _started_cli(tmp_path, work, set())
    os.killpg(killed.pid, signal.SIGKILL)
    killed.wait(timeout=30)
    assert (folder / "raw_table.parquet").exists()  # nothing could clean up after a SIGKILL ...
    following, own = _started_cli(tmp_path, work, {folder})
    os.killpg(following.pid, signal.SIGKILL)
    following.wait(timeout=30)
    assert not folder.exists() and own.exists()  # ... the next run removed it before writing its own
