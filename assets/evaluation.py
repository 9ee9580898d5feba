"""Full fidelity / utility / privacy reports for a candidate that passed its gates."""

import dagster as dg
import pandas as pd

from resources import PipelineSettings
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.metrics.fidelity import fidelity_metrics
from synth_pipeline.metrics.privacy import dcr_metrics, linkability
from synth_pipeline.metrics.utility import tstr
from synth_pipeline.schema import Schema

GROUP = "tabular"


def _report(context: dg.AssetExecutionContext, metrics: list[MetricResult]) -> dict:
    context.add_output_metadata(
        {m.name: m.value for m in metrics if isinstance(m.value, (int, float))}
        | {"not_computed": [f"{m.name}: {m.error}" for m in metrics if not m.computed]}
    )
    return {"metrics": [m.to_dict() for m in metrics]}


@dg.asset(group_name=GROUP)
def fidelity_report(
    context: dg.AssetExecutionContext, synthetic_candidate: pd.DataFrame, train_split: pd.DataFrame,
    settings: PipelineSettings,
) -> dict:
    schema = Schema.from_dict(train_split.attrs["schema"])
    return _report(context, fidelity_metrics(train_split, synthetic_candidate, schema, seed=settings.seed))


@dg.asset(group_name=GROUP)
def utility_report(
    context: dg.AssetExecutionContext, synthetic_candidate: pd.DataFrame, train_split: pd.DataFrame,
    holdout_split: pd.DataFrame, settings: PipelineSettings,
) -> dict:
    schema = Schema.from_dict(train_split.attrs["schema"])
    return _report(context, tstr(train_split, holdout_split, synthetic_candidate, schema, seed=settings.seed))


@dg.asset(group_name=GROUP)
def privacy_report(
    context: dg.AssetExecutionContext, synthetic_candidate: pd.DataFrame, train_split: pd.DataFrame,
    holdout_split: pd.DataFrame, settings: PipelineSettings,
) -> dict:
    cfg = settings.run_config()
    schema = Schema.from_dict(train_split.attrs["schema"])
    metrics = dcr_metrics(train_split, holdout_split, synthetic_candidate, schema, seed=cfg.seed)
    metrics.append(
        linkability(
            train_split, holdout_split, synthetic_candidate, schema, n_attacks=cfg.link_attacks, seed=cfg.seed,
            threshold=cfg.thresholds.linkability_ci_high_max,
        )
    )
    return _report(context, metrics)
