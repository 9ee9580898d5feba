"""Intermediates on shared storage: the IO manager's base is a universal_pathlib UPath, so a local
folder (a PVC in Kubernetes) and an fsspec filesystem (`memory://` here, `s3://` in production) hold
the same tables and fitted models, and a run's folder is removed when the run ends — by the process
that ran the whole run, or, when every step was its own pod, by the run-end sensor."""

import json
import tempfile
import uuid
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from upath import UPath

from resources import ParquetIOManager
from synth_pipeline import intermediates
from synth_pipeline.generators.base import load_generator, make_generator
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.schema import Schema

SEEN: dict[str, object] = {}


@pytest.fixture(scope="module")
def table(flchain_sample):
    rows, schema = flchain_sample
    df = rows.iloc[:300].reset_index(drop=True)
    df.attrs = {"schema": schema.to_dict()}
    return df


def _assets(df: pd.DataFrame):
    @dg.asset
    def train_split() -> pd.DataFrame:
        return df

    @dg.asset
    def fitted_generator(train_split: pd.DataFrame) -> Path:
        schema = Schema.from_dict(train_split.attrs["schema"])
        gen = make_generator("gaussian_copula")
        gen.fit(train_split, schema, target=schema.target, seed=0)
        out = Path(tempfile.mkdtemp(prefix="generator-"))
        gen.save(out)
        return out

    @dg.asset
    def synthetic_candidate(fitted_generator: Path, train_split: pd.DataFrame) -> dict:
        SEEN["attrs"] = train_split.attrs
        SEEN["train_sha256"] = frame_sha256(train_split)
        SEEN["model_dir"] = fitted_generator
        SEEN["sample"] = load_generator(fitted_generator).sample(50, seed=1)
        return {"rows": 50}

    return [train_split, fitted_generator, synthetic_candidate]


@pytest.fixture(params=["local", "memory"])
def base(request, tmp_path):
    if request.param == "local":
        return str(tmp_path / "work")
    return f"memory://synth-test-{uuid.uuid4().hex[:8]}/work"


def test_a_table_and_a_fitted_model_round_trip_and_the_run_folder_goes(base, table):
    SEEN.clear()
    result = dg.materialize(_assets(table), resources={"io_manager": ParquetIOManager(base_dir=base)})
    assert result.success
    assert SEEN["attrs"] == json.loads(json.dumps(table.attrs)) and SEEN["train_sha256"] == frame_sha256(table)
    # the model loaded back from the store samples what the model fitted in this process samples
    schema = Schema.from_dict(table.attrs["schema"])
    gen = make_generator("gaussian_copula")
    gen.fit(table, schema, target=schema.target, seed=0)
    pd.testing.assert_frame_equal(SEEN["sample"], gen.sample(50, seed=1))
    folder = intermediates.run_folder(base, result.run_id)
    assert isinstance(folder, UPath) and intermediates.is_local(folder) == base.startswith("/")
    assert not folder.exists()  # the in-process run removed its folder at teardown
    assert not Path(SEEN["model_dir"]).exists()  # and the local copy of an uploaded model


def test_kept_intermediates_are_readable_where_they_were_written(base, table):
    result = dg.materialize(_assets(table), resources={"io_manager": ParquetIOManager(base_dir=base,
                                                                                       keep_intermediates=True)})
    folder = intermediates.run_folder(base, result.run_id)
    with (folder / "train_split.parquet").open("rb") as f:
        back = pd.read_parquet(f)
    assert frame_sha256(back) == frame_sha256(table)
    assert (folder / "fitted_generator").is_dir() and any((folder / "fitted_generator").iterdir())
    assert intermediates.read_owner(folder).keep
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    intermediates.rmtree(folder)
    assert not folder.exists()


def test_in_a_step_pod_the_folder_stays_for_the_run_end_sensor(base, table, monkeypatch):
    """Under the k8s_job_executor every step is its own pod (DAGSTER_RUN_STEP_KEY set): the first
    step's teardown must not remove the run's shared folder; the run-end sensor removes it."""
    from assets.operations import INTERMEDIATES_CLEANUP

    monkeypatch.setenv(intermediates.STEP_POD_ENV, "train_split")
    monkeypatch.setenv(intermediates.WORK_DIR_ENV, base)
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize(_assets(table), instance=instance,
                            resources={"io_manager": ParquetIOManager(base_dir=base)})
    folder = intermediates.run_folder(base, result.run_id)
    assert (folder / "train_split.parquet").exists()
    [end] = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_SUCCESS)
    [on_success] = [s for s in INTERMEDIATES_CLEANUP if s.name == "remove_intermediates_on_success"]
    on_success(dg.build_run_status_sensor_context(sensor_name=on_success.name, dagster_instance=instance,
                                                  dagster_run=instance.get_run_by_id(result.run_id),
                                                  dagster_event=end.dagster_event))
    assert not folder.exists()


def test_a_killed_runs_folder_on_an_object_store_is_swept_once_its_run_is_finished(table):
    root = UPath(f"memory://synth-test-{uuid.uuid4().hex[:8]}/work")
    done, live = intermediates.claim(root, "finished-run"), intermediates.claim(root, "live-run")
    intermediates.write_whole(done / "raw_table.parquet", lambda f: f.write(b"real rows"))
    removed = intermediates.sweep(root, lambda run_id: run_id == "finished-run")
    assert [p.name for p in removed] == ["finished-run"]
    assert not done.exists() and live.exists()


def test_the_release_store_refuses_an_object_store_root():
    """Releases stay on a POSIX path (a PVC in Kubernetes): their publication is an atomic rename."""
    from resources import ReleaseStore
    from synth_pipeline.errors import BadInput

    with pytest.raises(BadInput, match="atomic folder rename"):
        ReleaseStore(root="s3://bucket/releases").path
    assert ReleaseStore(root="/mnt/releases").path == Path("/mnt/releases")
