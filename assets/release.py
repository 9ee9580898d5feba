"""release: publish the candidate only if every gate passed for *this* candidate, else refuse."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from assets.gates import read_gate
from assets.refusal import refuse
from resources import PipelineSettings, ReleaseStore
from synth_pipeline.config import gate_settings_sha256
from synth_pipeline.hashing import frame_sha256, parquet_bytes
from synth_pipeline.release import (
    GATES, ReleaseExists, code_version, environment, exact_row_matches, gate_problems, package_versions,
    publish, record_refusal, release_id_for, utc_now,
)
from synth_pipeline.release_contents import existing_release_problems
from synth_pipeline.plots import column_distributions, correlation_difference
from synth_pipeline.report import render_report
from synth_pipeline.schema import Schema

GROUP = "tabular"
CANDIDATE = dg.AssetKey("synthetic_candidate")
UPSTREAM = ("raw_table", "validated_table", "train_split", "holdout_split", "fitted_generator", "synthetic_candidate",
            "fidelity_report", "utility_report", "privacy_report")


def _lineage(instance: dg.DagsterInstance) -> dict:
    out = {}
    for name in UPSTREAM:
        ev = instance.get_latest_materialization_event(dg.AssetKey(name))
        out[name] = {"run_id": ev.run_id, "materialized_at": ev.timestamp} if ev else None
    return out


@dg.asset(group_name=GROUP, kinds={"parquet"})
def release(
    context: dg.AssetExecutionContext,
    synthetic_candidate: pd.DataFrame,
    train_split: pd.DataFrame,
    holdout_split: pd.DataFrame,
    fidelity_report: dict,
    utility_report: dict,
    privacy_report: dict,
    settings: PipelineSettings,
    release_store: ReleaseStore,
) -> dg.MaterializeResult:
    """Re-reads the gate results, then writes `<root>/<dataset>/<release_id>/` atomically, or a
    refusal record and a failed step. Never publishes on a missing, stale or failed gate."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    run_id = context.run.run_id
    sha = frame_sha256(synthetic_candidate)
    read = {g: read_gate(context.instance, g) for g in GATES}
    problems = gate_problems({g: r for g, (r, _) in read.items()}, candidate_sha256=sha,
                             thresholds_sha256=gate_settings_sha256(cfg))
    copies = exact_row_matches(synthetic_candidate, train_split)
    if copies:
        problems.append(f"release: {copies} synthetic rows equal a real training row")
    if problems:
        record_refusal(release_store.path, schema.dataset, run_id,
                       {"gate": "release", "passed": False, "reason": "; ".join(problems), "candidate_sha256": sha,
                        "at": utc_now()})
        raise dg.Failure(description="refused: " + "; ".join(problems), metadata={"verdict": "refused"})

    day = context.run.tags.get("synth/date") or datetime.now(timezone.utc).strftime("%Y%m%d")
    release_id = release_id_for(day, cfg.generator, sha)
    manifest = {
        "verdict": "published",
        "dataset": schema.dataset,
        "created_at": utc_now(),
        "n_rows": len(synthetic_candidate),
        "synthetic_sha256": sha,
        "input": {**train_split.attrs["input"], "train_rows": len(train_split), "holdout_rows": len(holdout_split)},
        "schema": schema.to_dict(),
        "config": cfg.to_dict(),
        "seed": cfg.seed,
        "generator": cfg.generator,
        "code_version": code_version(),
        "packages": package_versions(),
        "environment": environment(),
        "thresholds": cfg.to_dict()["thresholds"],
        "gates": [result for _, result in read.values()],
        "reports": {"fidelity": fidelity_report, "utility": utility_report, "privacy": privacy_report},
        "plots_data": {"columns": column_distributions(train_split, synthetic_candidate, schema),
                       "correlation": correlation_difference(train_split, synthetic_candidate, schema)},
        "dagster": {"run_id": run_id, "job": context.run.job_name, "lineage": _lineage(context.instance)},
    }
    files = {"synthetic.parquet": parquet_bytes(synthetic_candidate),
             "report.html": render_report({**manifest, "release_id": release_id}).encode()}
    try:
        path = publish(release_store.path, schema.dataset, release_id, files, manifest)
    except ReleaseExists:
        path = release_store.path / schema.dataset / release_id
        if mismatch := existing_release_problems(path, files, sha):
            refuse(context, release_store, schema.dataset, "release",
                   f"release {release_id} already exists with other contents: {'; '.join(mismatch)}")
        context.log.warning(f"release {release_id} already published (same day and candidate bytes); not rewritten")
    return dg.MaterializeResult(
        metadata={"verdict": "published", "release_id": release_id, "path": dg.MetadataValue.path(str(path)),
                  "synthetic_sha256": sha, "rows": len(synthetic_candidate)}
    )
