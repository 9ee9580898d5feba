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


def test_k8s_run_config_validates_with_a_gpu_for_training():
    from dagster_k8s import k8s_job_executor

    from synth_pipeline.definitions import ASSETS, GATE_CHECKS, default_resources

    job = dg.define_asset_job("release_job_k8s", selection=dg.AssetSelection.all(), executor_def=k8s_job_executor)
    defs = dg.Definitions(assets=ASSETS, asset_checks=GATE_CHECKS, jobs=[job], resources=default_resources())
    run_config = yaml.safe_load((ROOT / "deploy" / "k8s" / "run_config.yaml").read_text())
    assert dg.validate_run_config(defs.resolve_job_def("release_job_k8s"), run_config)
    gpu = run_config["execution"]["config"]["per_step_k8s_config"]["fitted_generator"]
    assert gpu["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    run_config["execution"]["config"]["max_concurrent"] = "many"
    with pytest.raises(dg.DagsterInvalidConfigError):
        dg.validate_run_config(defs.resolve_job_def("release_job_k8s"), run_config)
