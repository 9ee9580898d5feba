"""release: publish the candidate only if every gate passed for *this* candidate, else refuse."""

from datetime import datetime, timezone

import dagster as dg
import pandas as pd

from assets.audit_view import release_metadata
from assets.gates import read_gate
from assets.ingest import SOURCE
from assets.refusal import refuse
from assets.run_log import lineage
from resources import PipelineSettings, ReleaseStore
from synth_pipeline.config import gate_settings_sha256
from synth_pipeline.copies import rare_copy_mask
from synth_pipeline.drift import input_profile, since_previous
from synth_pipeline.hashing import frame_sha256, parquet_bytes
from synth_pipeline.kernel import (
    GATES, ReleaseExists, code_version, environment, gate_problems, package_versions, publish, release_id_for, utc_now,
)
from synth_pipeline.release_contents import existing_release_problems
from synth_pipeline.plots import column_distributions, correlation_difference
from synth_pipeline.report import render_report
from synth_pipeline.schema import Schema

GROUP = "tabular"
CANDIDATE = dg.AssetKey("synthetic_candidate")
UPSTREAM = ("raw_table", "validated_table", "train_split", "holdout_split", "fitted_generator", "synthetic_candidate",
            "fidelity_report", "utility_report", "privacy_report")


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
    """Re-reads this run's own gate results, then writes `<root>/<dataset>/<release_id>/` atomically, or a
    refusal record and a failed step. Never publishes on a missing, stale or failed gate."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    run_id = context.run.run_id
    sha = frame_sha256(synthetic_candidate)
    read = {g: read_gate(context.instance, g, run_id) for g in GATES}
    problems = gate_problems({g: r for g, (r, _) in read.items()}, candidate_sha256=sha,
                             thresholds_sha256=gate_settings_sha256(cfg))
    rare = int(rare_copy_mask(synthetic_candidate, train=train_split, columns=list(schema.names),
                              k=cfg.small_cell_k).sum())
    if rare:  # the last line of defence: the copy filter removes these before any gate runs
        problems.append(f"release: {rare} synthetic rows equal a training row fewer than {cfg.small_cell_k} patients share")
    if problems:
        refuse(context, release_store, schema.dataset, "release", "; ".join(problems), candidate_sha256=sha)

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
        "overrides": cfg.overrides(),
        "copy_filter": synthetic_candidate.attrs.get("copy_filter"),
        "gates": [result for _, result in read.values()],
        "reports": {"fidelity": fidelity_report, "utility": utility_report, "privacy": privacy_report},
        "plots_data": {"columns": column_distributions(train_split, synthetic_candidate, schema, cfg.small_cell_k),
                       "correlation": correlation_difference(train_split, synthetic_candidate, schema)},
        "dagster": {"run_id": run_id, "job": context.run.job_name,
                    "lineage": lineage(context.instance, run_id, UPSTREAM, [SOURCE.to_user_string()])},
    }
    real = pd.concat([train_split, holdout_split], ignore_index=True)
    manifest["input_profile"] = input_profile(real, schema)
    change = since_previous(release_store.path / schema.dataset, manifest, real, schema, release_id=release_id)
    manifest["since_previous"] = change.to_dict() if change else None
    context.log.info(change.summary() if change else "first release of this dataset in this store")
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
        metadata={"verdict": "published", "synthetic_sha256": sha, "rows": len(synthetic_candidate),
                  "since_previous": dg.MetadataValue.json(manifest["since_previous"] or {"first_release": True}),
                  **release_metadata(dataset=schema.dataset, input_sha256=train_split.attrs["input"].get("sha256"),
                                     release_id=release_id, path=path, gates=manifest["gates"],
                                     rows=len(synthetic_candidate), columns=[(c.name, c.kind) for c in schema.columns])}
    )
