"""The whole asset graph through dagster.materialize (via the CLI's runner) on real tables.

These are the product's promises: the default release passes on FLCHAIN and ACTG175; the copy
controls are refused with nothing published (by the copy filter or the DCR and linkability gates);
the same seed gives byte-identical data; no released row copies a rare real row; a stale gate
result cannot release.
"""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from resources import ComputeDevice, DaskCluster, ParquetIOManager, PipelineSettings, ReleaseStore
from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig
from synth_pipeline.definitions import ASSETS, GATE_CHECKS, defs
from synth_pipeline.copies import rare_copy_mask
from synth_pipeline.data import load_dataset
from synth_pipeline.kernel import audit

FAST: dict = {}  # the product defaults (1000 linkability attacks)


def _release(tmp_path: Path, data: str, generator: str, seed: int = 0, name: str = "out"):
    cfg = RunConfig.from_dict({"data": data, "generator": generator, "seed": seed, **FAST})
    out = tmp_path / name
    return run_release(cfg, out, instance=dg.DagsterInstance.ephemeral()), out


def _published_dirs(out: Path) -> list[Path]:
    return [p for p in out.glob("*/*") if p.is_dir() and p.name != "refusals" and not p.name.startswith(".")]


def test_definitions_load_with_the_contract_names():
    repo = defs.get_repository_def()
    keys = {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()}
    assert keys == {"raw_input", "raw_table", "validated_table", "train_split", "holdout_split", "fitted_generator",
                    "synthetic_candidate", "fidelity_report", "utility_report", "privacy_report", "release",
                    "mri_slices", "mri_train_slices", "mri_holdout_slices", "mri_fitted_generator",
                    "mri_synthetic_slices", "mri_synthetic_volume", "mri_image_metrics", "mri_release"}
    checks = {c.name for c in repo.asset_graph.asset_check_keys}
    assert checks == {"dcr_gate", "linkability_gate", "tstr_gate", "inference_gate", "fidelity_gate",
                      "mri_memorisation_gate", "mri_fidelity_gate"}
    groups = {k.to_user_string(): repo.asset_graph.get(k).group_name for k in repo.asset_graph.get_all_asset_keys()}
    assert {k for k, g in groups.items() if g == "mri"} == {k for k in keys if k.startswith("mri_")}
    assert repo.asset_graph.get(dg.AssetKey("raw_table")).parent_keys == {dg.AssetKey("raw_input")}  # input hash in lineage
    job = defs.resolve_job_def("release_job")
    assert not any(n.startswith("mri") for n in job.graph.node_dict)
    assert defs.get_schedule_def("nightly_release").default_status == dg.DefaultScheduleStatus.STOPPED


@pytest.mark.parametrize("data", ["flchain", "actg175"])
def test_default_release_passes_all_gates_and_is_audited(tmp_path, data):
    outcome, out = _release(tmp_path, data, "gaussian_copula")
    assert outcome.status == "published", outcome.message
    [rel] = _published_dirs(out)
    manifest = json.loads((rel / "manifest.json").read_text())
    assert {g["gate"]: g["passed"] for g in manifest["gates"]} == {
        "dcr_gate": True, "linkability_gate": True, "tstr_gate": True, "inference_gate": True, "fidelity_gate": True}
    inference = next(g for g in manifest["gates"] if g["gate"] == "inference_gate")
    declared = load_dataset(data).schema
    assert {m["name"] for m in inference["metrics"]} == {f"inference[{c}]" for c in (declared.target, *declared.sensitive)}
    assert all(m["threshold"] == 0.25 and m["passed"] for m in inference["metrics"])
    assert manifest["dataset"] == data and manifest["config"]["seed"] == 0
    assert len(manifest["input"]["sha256"]) == 64 and manifest["dagster"]["run_id"] == outcome.run_id
    assert set(manifest["dagster"]["lineage"]) >= {"raw_table", "train_split", "synthetic_candidate"}
    assert audit(rel).ok
    assert not (rel.parent / "refusals").exists()  # a run nobody refused leaves no refusal record
    synthetic = pd.read_parquet(rel / "synthetic.parquet")
    from synth_pipeline.preprocess import model_table

    loaded = load_dataset(data)
    real = model_table(loaded.raw, loaded.schema)
    # no released row equals a real combination fewer than 5 patients share (train or holdout)
    assert not rare_copy_mask(synthetic, train=real, columns=loaded.schema.names, k=5).any()
    assert not set(loaded.schema.drop) & set(synthetic.columns)
    assert "<table>" in (rel / "report.html").read_text()


@pytest.mark.parametrize("data", ["flchain", "actg175", "gbsg2"])
@pytest.mark.parametrize("control", ["copy", "perturbed_copy"])
def test_copy_controls_are_refused(tmp_path, data, control):
    """`copy` hands back training rows held by one patient each: the copy filter removes them all
    (its redraws are copies again) and refuses before any gate. `perturbed_copy` rows are no
    longer equal to training rows, so the filter passes them on and the DCR and linkability gates
    refuse them."""
    outcome, out = _release(tmp_path, data, control)
    assert outcome.status == "refused", outcome.message
    assert outcome.exit_code == 3
    assert _published_dirs(out) == []
    refusal = json.loads(Path(outcome.path).read_text())
    if control == "copy":
        assert refusal["failing_gates"] == ["copy_filter"]
        [entry] = refusal["entries"]
        assert "the copy filter removed all" in entry["reason"] and entry["copy_filter"]["rows_after"] == 0
    else:
        assert {"dcr_gate", "linkability_gate", "inference_gate"} <= set(refusal["failing_gates"])
        assert "dcr_gate" in Path(outcome.path).with_suffix(".html").read_text()  # the readable refusal
    assert not any(p.suffix == ".parquet" for p in out.rglob("*"))


def test_same_seed_gives_byte_identical_release_data(tmp_path):
    first, out1 = _release(tmp_path, "flchain", "gaussian_copula", name="a")
    second, out2 = _release(tmp_path, "flchain", "gaussian_copula", name="b")
    assert first.status == second.status == "published"
    [a], [b] = _published_dirs(out1), _published_dirs(out2)
    assert (a / "synthetic.parquet").read_bytes() == (b / "synthetic.parquet").read_bytes()
    assert a.name == b.name  # deterministic release id for the same day and candidate


def _resources(tmp_path: Path, generator: str, keep: bool = False) -> dict:
    return {
        "settings": PipelineSettings(data="actg175", generator=generator, **FAST),
        "io_manager": ParquetIOManager(base_dir=str(tmp_path / "work"), keep_intermediates=keep),
        "release_store": ReleaseStore(root=str(tmp_path / "out")),
        "device": ComputeDevice(),
        "cluster": DaskCluster(),
    }


def test_release_refuses_when_its_own_run_has_no_gate_result_and_the_refusal_is_final(tmp_path):
    """A blocking check stops downstream only within its run: prove the release asset itself refuses
    when its own run holds no gate result, although an earlier run on the same instance passed the
    gates for byte-identical candidate data; under the job's retry policy that refusal is not retried."""
    from assets.operations import RETRY

    instance = dg.DagsterInstance.ephemeral()
    everything = [*ASSETS, *GATE_CHECKS]
    ok = dg.materialize(everything, resources=_resources(tmp_path, "gaussian_copula"), instance=instance)
    assert ok.success
    for report in ("privacy_report", "utility_report"):  # they reuse the gates' results, not recompute
        assert ok.asset_materializations_for_node(report)[0].metadata["reused_gate_results"].value is True
    no_gates = dg.define_asset_job("no_gates", selection=dg.AssetSelection.all().without_checks(), op_retry_policy=RETRY)
    late = dg.Definitions(assets=ASSETS, asset_checks=GATE_CHECKS, jobs=[no_gates],
                          resources=_resources(tmp_path, "gaussian_copula")).resolve_job_def("no_gates").execute_in_process(
        instance=instance, raise_on_error=False)
    assert not late.success
    assert not [e for e in late.all_events if e.event_type_value in ("STEP_UP_FOR_RETRY", "STEP_RESTARTED")]
    refusals = list((tmp_path / "out" / "actg175" / "refusals").glob(f"{late.run_id}.json"))
    assert refusals and "check did not run" in refusals[0].read_text()
    assert len(_published_dirs(tmp_path / "out")) == 1  # only the first, legitimate release


def test_nightly_schedule_requests_one_isolated_run_per_bundled_dataset():
    from datetime import datetime, timezone

    from assets.operations import nightly_release
    from synth_pipeline.data import BUNDLED

    context = dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 25, 2, tzinfo=timezone.utc))
    requests = list(nightly_release(context))
    assert sorted(r.tags["dataset"] for r in requests) == sorted(BUNDLED)
    assert {r.run_key for r in requests} == {f"{d}-20261125" for d in BUNDLED}
    for r in requests:  # intermediates: each run its own folder (tests/test_isolation.py runs them at once)
        assert r.run_config["resources"]["settings"]["config"]["data"] == r.tags["dataset"]


def test_conditions_sample_one_class_and_a_failing_generator_is_a_refusal(tmp_path):
    """`conditions` reaches the sampler (every candidate row is the asked class); a single-class
    candidate cannot be utility-tested, so tstr_gate refuses it rather than passing it unchecked."""
    res = _resources(tmp_path, "gaussian_copula", keep=True)
    res["settings"] = PipelineSettings(data="actg175", generator="gaussian_copula", conditions={"cens": "1"})
    result = dg.materialize([*ASSETS, *GATE_CHECKS], resources=res, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    candidate = pd.read_parquet(tmp_path / "work" / result.run_id / "synthetic_candidate.parquet")
    assert set(candidate["cens"]) == {"1"}
    tstr_eval = [e for e in result.get_asset_check_evaluations() if e.check_name == "tstr_gate"]
    assert tstr_eval and not tstr_eval[0].passed
    assert _published_dirs(tmp_path / "out") == []

    bad = _resources(tmp_path / "bad", "smote")
    bad["settings"] = PipelineSettings(data="actg175", generator="smote", conditions={"cens": "2"})
    failed = dg.materialize([*ASSETS, *GATE_CHECKS], resources=bad, instance=dg.DagsterInstance.ephemeral(),
                            raise_on_error=False)
    refusal = json.loads((tmp_path / "bad" / "out" / "actg175" / "refusals" / f"{failed.run_id}.json").read_text())
    assert refusal["failing_gates"] == ["generator"] and "smote" in refusal["entries"][0]["reason"]
