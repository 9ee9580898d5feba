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
    cfg = RunConfig.from_dict({"data": "actg175", "generator": "gaussian_copula"})
    outcome = run_release(cfg, tmp_path / "out", instance=instance)
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
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, UserDefinedDagsterK8sConfig, construct_dagster_k8s_job
ops = sorted(node.name for node in job.graph.nodes)
execution = yaml.safe_load(open("deploy/k8s/run_config.yaml"))["execution"]["config"]
every_step = K8sContainerContext(run_k8s_config=UserDefinedDagsterK8sConfig.from_dict(execution["step_k8s_config"]))
pods = {}
for op in ops:  # each step's Kubernetes job as the executor builds it (per-step config merged onto the common one)
    own = UserDefinedDagsterK8sConfig.from_dict(execution["per_step_k8s_config"].get(op, {}))
    k8s = every_step.merge(K8sContainerContext(run_k8s_config=own)).run_k8s_config
    pod = construct_dagster_k8s_job(DagsterK8sJobConfig(job_image="synth-pipeline:test", dagster_home="/opt/dagster/home",
                                                        image_pull_policy="IfNotPresent"),
                                    args=["dagster", "api", "execute_step"], job_name="step",
                                    user_defined_k8s_config=k8s).spec.template.spec
    pods[op] = {"limits": pod.containers[0].resources.limits,
                "mounts": sorted(m.mount_path for m in pod.containers[0].volume_mounts or []),
                "claims": sorted(v.persistent_volume_claim.claim_name for v in pod.volumes or [] if v.persistent_volume_claim)}
from datetime import datetime, timezone
from assets.operations import new_input_file, nightly_release
tick = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 12, 1, 2, tzinfo=timezone.utc))
launched = [*nightly_release(tick), *new_input_file(dg.build_sensor_context())]  # $SYNTH_RUN_CONFIG set, as in the image
carried = [r.run_config["execution"] == {"config": execution} and dg.validate_run_config(job, r.run_config) is not None
           for r in launched]
print(json.dumps({"executor": job.executor_def.name, "valid": ok, "bad_refused": bad_refused,
                  "launcher_ok": launcher.success, "launcher_class": instance["run_launcher"]["class"],
                  "launched": sorted(r.tags["dataset"] for r in launched), "carried": carried,
                  "ops": ops, "pods": pods}))
"""


def test_k8s_run_config_validates_against_the_shipped_release_job(tmp_path):
    """The shipped release_job as the Docker image builds it (SYNTH_EXECUTOR=k8s: k8s_job_executor,
    SYNTH_RUN_CONFIG: the run config every scheduled or sensed run carries) accepts
    deploy/k8s/run_config.yaml and refuses a broken one; the runs the nightly schedule and the file
    sensor request carry it and validate too; deploy/k8s/dagster.yaml's K8sRunLauncher config is
    valid for dagster-k8s."""
    import json
    import subprocess
    import sys

    (tmp_path / "ward7.csv").write_text("a,b,death\n1,2,dead\n")
    (tmp_path / "ward7.json").write_text(json.dumps({"target": "death"}))
    env = {**os.environ, "SYNTH_EXECUTOR": "k8s", "PYTHONPATH": str(ROOT), "SYNTH_WATCH_DIR": str(tmp_path),
           "SYNTH_RUN_CONFIG": str(ROOT / "deploy" / "k8s" / "run_config.yaml")}
    env.pop("SYNTH_CATALOGUE", None)
    proc = subprocess.run([sys.executable, "-c", K8S_CHECK], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    ops, pods = found.pop("ops"), found.pop("pods")
    launched = found.pop("launched")
    assert "ward7" in launched and len(launched) > 1  # the sensor's file and the bundled tables' nightly runs
    assert found == {"executor": "k8s", "valid": True, "bad_refused": True, "launcher_ok": True,
                     "launcher_class": "K8sRunLauncher", "carried": [True] * len(launched)}
    run_config = yaml.safe_load((ROOT / "deploy" / "k8s" / "run_config.yaml").read_text())
    per_step = run_config["execution"]["config"]["per_step_k8s_config"]
    assert set(per_step) <= set(ops), set(per_step) - set(ops)  # dagster-k8s would ignore a misspelt op
    assert {op for op, pod in pods.items() if "nvidia.com/gpu" in pod["limits"]} == {"fitted_generator",
                                                                                    "synthetic_candidate"}
    gib = {op: float(pod["limits"]["memory"].removesuffix("Gi")) for op, pod in pods.items()}
    assert gib["synthetic_candidate_dcr_gate"] >= 14  # the 10M projection of exact DCR: 10-14 GB (issue 13)
    assert gib["synthetic_candidate_tstr_gate"] > 9 and gib["utility_report"] > 9  # the random forest: ~9 GB
    for pod in pods.values():  # every step pod sees the same intermediates and release store
        assert pod["mounts"] == ["/opt/synth-pipeline/.work", "/opt/synth-pipeline/releases"]
        assert pod["claims"] == ["synth-pipeline-releases", "synth-pipeline-work"]
