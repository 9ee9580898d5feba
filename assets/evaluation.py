"""Full fidelity / utility / privacy reports for a candidate that passed its gates."""

import dagster as dg
import pandas as pd

from resources import PipelineSettings
from synth_pipeline import evaluation
from synth_pipeline.schema import Schema

GROUP = "tabular"


def _report_asset(name: str, compute) -> dg.AssetsDefinition:
    @dg.asset(name=name, group_name=GROUP, description=compute.__doc__)
    def _report(
        context: dg.AssetExecutionContext, synthetic_candidate: pd.DataFrame, train_split: pd.DataFrame,
        holdout_split: pd.DataFrame, settings: PipelineSettings,
    ) -> dict:
        schema = Schema.from_dict(train_split.attrs["schema"])
        metrics = compute(synthetic_candidate, train_split, holdout_split, schema, settings.run_config())
        context.add_output_metadata(
            {m.name: m.value for m in metrics if isinstance(m.value, (int, float))}
            | {"not_computed": [f"{m.name}: {m.error}" for m in metrics if not m.computed]}
        )
        return {"metrics": [m.to_dict() for m in metrics]}

    return _report


fidelity_report = _report_asset("fidelity_report", evaluation.fidelity)
utility_report = _report_asset("utility_report", evaluation.utility_metrics)
privacy_report = _report_asset("privacy_report", evaluation.privacy_metrics)
