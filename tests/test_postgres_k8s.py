"""Real storage and scale-out: the graph runs against PostgreSQL run/event storage (a real server on
loopback, started by `make services`) and the run reads back; the Kubernetes run config validates."""

import os
from pathlib import Path

import dagster as dg
import pytest
import yaml

from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig

PG_URL = os.environ.get("SYNTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:55432/dagster_test")
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pg_url() -> str:
    import psycopg2

    try:
        psycopg2.connect(PG_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} ({e}); `make services` starts it")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; run `make services`")
    return PG_URL


def test_release_runs_on_postgres_storage_and_reads_back(tmp_path, pg_url, monkeypatch):
    home = tmp_path / "dagster_home"
    home.mkdir()
    config = yaml.safe_load((ROOT / "deploy" / "dagster-postgres.yaml").read_text())
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("SYNTH_PG_URL", pg_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    instance = dg.DagsterInstance.from_config(str(home))
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    outcome = run_release(RunConfig.from_dict({"data": "actg175"}), tmp_path / "out", instance=instance)
    assert outcome.status == "published", outcome.message

    reader = dg.DagsterInstance.from_config(str(home))  # a second client, as the webserver would be
    run = reader.get_run_by_id(outcome.run_id)
    assert run is not None and run.status == dg.DagsterRunStatus.SUCCESS
    assert reader.get_latest_materialization_event(dg.AssetKey("release")).run_id == outcome.run_id
    check = reader.get_latest_asset_check_evaluation_record(
        dg.AssetCheckKey(dg.AssetKey("synthetic_candidate"), "dcr_gate"))
    assert check.run_id == outcome.run_id


K8S_CHECK = """
import json, sys, yaml
import dagster as dg
from dagster._config import process_config
from dagster_k8s import K8sRunLauncher
from synth_pipeline.definitions import defs
job = defs.resolve_job_def("release_job")
run_config = yaml.safe_load(open("deploy/k8s/run_config.yaml"))
ok = dg.validate_run_config(job, run_config) is not None
run_config["execution"]["config"]["max_concurrent"] = "many"
try:
    dg.validate_run_config(job, run_config)
    bad_refused = False
except dg.DagsterInvalidConfigError:
    bad_refused = True
instance = yaml.safe_load(open("deploy/k8s/dagster.yaml"))
launcher = process_config(K8sRunLauncher.config_type(), instance["run_launcher"]["config"])
print(json.dumps({"executor": job.executor_def.name, "valid": ok, "bad_refused": bad_refused,
                  "launcher_ok": launcher.success, "launcher_class": instance["run_launcher"]["class"]}))
"""


def test_k8s_run_config_validates_against_the_shipped_release_job():
    """The shipped release_job as the Docker image builds it (SYNTH_EXECUTOR=k8s: k8s_job_executor)
    accepts deploy/k8s/run_config.yaml and refuses a broken one; deploy/k8s/dagster.yaml's
    K8sRunLauncher config is valid for dagster-k8s."""
    import json
    import subprocess
    import sys

    env = {**os.environ, "SYNTH_EXECUTOR": "k8s", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", K8S_CHECK], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    assert found == {"executor": "k8s", "valid": True, "bad_refused": True, "launcher_ok": True,
                     "launcher_class": "K8sRunLauncher"}
    run_config = yaml.safe_load((ROOT / "deploy" / "k8s" / "run_config.yaml").read_text())
    gpu = run_config["execution"]["config"]["per_step_k8s_config"]["fitted_generator"]
    assert gpu["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
