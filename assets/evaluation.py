"""Full fidelity / utility / privacy reports for a candidate that passed its gates.

The gate checks already computed DCR, linkability, inference and TSTR on this very candidate; the reports read
those results back from this run's own event log (verified by the candidate's sha256 and the gate settings' digest) instead of
computing them twice, and add what only the reports hold. Stale or missing gate results are
recomputed, never trusted.
"""

from collections.abc import Callable, Sequence

import dagster as dg
import pandas as pd

from assets.gates import read_gate
from resources import DaskCluster, PipelineSettings
from synth_pipeline import evaluation
from synth_pipeline.config import RunConfig, gate_settings_sha256
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.metrics.base import MetricResult
from synth_pipeline.schema import Schema

GROUP = "tabular"
Compute = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Schema, RunConfig], list[MetricResult]]


def _gate_metrics(instance: dg.DagsterInstance, run_id: str, gates: Sequence[str], candidate: pd.DataFrame,
                  cfg: RunConfig) -> list[MetricResult] | None:
    """The metrics the named gates computed in this run for this candidate under these settings, or None."""
    sha, settings_sha = frame_sha256(candidate), gate_settings_sha256(cfg)
    out: list[MetricResult] = []
    for gate in gates:
        record, result = read_gate(instance, gate, run_id)
        if record is None or record.candidate_sha256 != sha or record.thresholds_sha256 != settings_sha:
            return None
        out += [MetricResult.from_dict(m) for m in result.get("metrics", [])]
    return out


def _report_asset(name: str, full: Compute, gates: Sequence[str] = (), extra: Compute | None = None,
                  arrange: Callable[[list[MetricResult]], list[MetricResult]] = list):
    @dg.asset(name=name, group_name=GROUP, description=full.__doc__)
    def _report(
        context: dg.AssetExecutionContext, synthetic_candidate: pd.DataFrame, train_split: pd.DataFrame,
        holdout_split: pd.DataFrame, settings: PipelineSettings, cluster: DaskCluster,
    ) -> dict:
        cfg = settings.run_config()
        schema = Schema.from_dict(train_split.attrs["schema"])
        args = (synthetic_candidate, train_split, holdout_split, schema, cfg)
        reused = _gate_metrics(context.instance, context.run.run_id, gates, synthetic_candidate, cfg) if gates else None
        with cluster.active():
            metrics = arrange([*reused, *extra(*args)]) if reused is not None and extra else full(*args)
        context.add_output_metadata(
            {m.name: m.value for m in metrics if isinstance(m.value, (int, float))}
            | {"not_computed": [f"{m.name}: {m.error}" for m in metrics if not m.computed],
               "reused_gate_results": reused is not None}
        )
        return {"metrics": [m.to_dict() for m in metrics]}

    return _report


fidelity_report = _report_asset("fidelity_report", evaluation.fidelity)
utility_report = _report_asset("utility_report", evaluation.utility_metrics, ("tstr_gate",),
                               evaluation.augmentation_metrics)
privacy_report = _report_asset(
    "privacy_report", evaluation.privacy_metrics, ("dcr_gate", "linkability_gate", "inference_gate"),
    evaluation.singling_out_metrics,
    arrange=lambda ms: sorted(ms, key=lambda m: m.name.startswith("inference[")),  # privacy_metrics' order
)
