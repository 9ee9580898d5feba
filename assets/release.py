"""release: a thin wrapper over the release kernel (synth_pipeline.kernel.release_candidate) — this
run's own gate results in, a published folder or a final refusal out."""

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
from synth_pipeline.kernel import GATES, TRACKED_PACKAGES, release_candidate
from synth_pipeline.plots import column_distributions, correlation_difference
from synth_pipeline.report import render_report
from synth_pipeline.schema import Schema

GROUP = "tabular"
UPSTREAM = ("raw_table", "validated_table", "train_split", "holdout_split", "fitted_generator", "synthetic_candidate",
            "fidelity_report", "utility_report", "privacy_report")


def release_day(context: dg.AssetExecutionContext) -> str:
    """The day in the release id: the schedule's (tag synth/date), else today in UTC."""
    return context.run.tags.get("synth/date") or datetime.now(timezone.utc).strftime("%Y%m%d")


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
    """Publishes `<root>/<dataset>/<release_id>/` atomically only if every gate passed for *this*
    candidate in *this* run and no copy of a rare training row is left; otherwise a final refusal."""
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    run_id = context.run.run_id
    sha = frame_sha256(synthetic_candidate)
    read = {g: read_gate(context.instance, g, run_id) for g in GATES}
    rare = int(rare_copy_mask(synthetic_candidate, train=train_split, columns=list(schema.names),
                              k=cfg.small_cell_k).sum())
    last_line = [f"release: {rare} synthetic rows equal a training row fewer than {cfg.small_cell_k} patients share"] \
        if rare else []  # the copy filter removes these before any gate runs; this is the last line of defence

    def build(release_id: str, base: dict) -> tuple[dict[str, bytes], dict]:
        own = {
            "n_rows": len(synthetic_candidate),
            "input": {**train_split.attrs["input"], "train_rows": len(train_split), "holdout_rows": len(holdout_split)},
            "schema": schema.to_dict(),
            "generator": cfg.generator,
            "copy_filter": synthetic_candidate.attrs.get("copy_filter"),
            "privacy": synthetic_candidate.attrs.get("privacy"),
            "selection": synthetic_candidate.attrs.get("selection"),
            "reports": {"fidelity": fidelity_report, "utility": utility_report, "privacy": privacy_report},
            "plots_data": {"columns": column_distributions(train_split, synthetic_candidate, schema, cfg.small_cell_k),
                           "correlation": correlation_difference(train_split, synthetic_candidate, schema)},
        }
        real = pd.concat([train_split, holdout_split], ignore_index=True)
        own["input_profile"] = input_profile(real, schema)
        change = since_previous(release_store.path / schema.dataset, {**base, **own}, real, schema, release_id=release_id)
        own["since_previous"] = change.to_dict() if change else None
        context.log.info(change.summary() if change else "first release of this dataset in this store")
        files = {"synthetic.parquet": parquet_bytes(synthetic_candidate),
                 "report.html": render_report({**base, **own, "release_id": release_id}).encode()}
        return files, own

    decision = release_candidate(
        root=release_store.path, arm="tabular", dataset=schema.dataset, model=cfg.generator, day=release_day(context),
        candidate_sha256=sha, settings_sha256=gate_settings_sha256(cfg), gates=GATES,
        records={g: r for g, (r, _) in read.items()}, results={g: res for g, (_, res) in read.items()},
        last_line=last_line, config=cfg.to_dict(), overrides=cfg.overrides(),
        dagster={"run_id": run_id, "job": context.run.job_name,
                 "lineage": lineage(context.instance, run_id, UPSTREAM, [SOURCE.to_user_string()])},
        packages=TRACKED_PACKAGES, build=build,
    )
    if not decision.published:
        refuse(context, release_store, schema.dataset, "release", decision.reason, config=cfg.to_dict(),
               candidate_sha256=sha)
    manifest = decision.manifest
    return dg.MaterializeResult(
        metadata={"verdict": "published", "synthetic_sha256": sha, "rows": len(synthetic_candidate),
                  "since_previous": dg.MetadataValue.json(manifest["since_previous"] or {"first_release": True}),
                  **release_metadata(dataset=schema.dataset, input_sha256=train_split.attrs["input"].get("sha256"),
                                     release_id=decision.release_id, path=decision.path, gates=manifest["gates"],
                                     rows=len(synthetic_candidate), columns=[(c.name, c.kind) for c in schema.columns])}
    )
