"""The release gates as blocking ERROR checks on synthetic_candidate.

Each check records the candidate's sha256 and the gate settings' digest in its metadata, so the
release step can prove the verdict it reads belongs to the candidate it is about to publish. A
failing gate also writes the run's refusal record: downstream assets (release included) are
skipped by Dagster once a blocking check fails, so the check is the last step that can say why.
"""

import dagster as dg
import pandas as pd

from resources import PipelineSettings, ReleaseStore
from synth_pipeline.config import gate_settings_sha256
from synth_pipeline.evaluation import GATE_EVALUATORS, run_gate
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.release import GateRecord, record_refusal, utc_now
from synth_pipeline.schema import Schema

CANDIDATE = dg.AssetKey("synthetic_candidate")
SPLITS = {"train_split": dg.AssetIn("train_split"), "holdout_split": dg.AssetIn("holdout_split")}
DESCRIPTIONS = {
    "dcr_gate": "Memorisation rate, DCR share and exact copies (synthetic->train vs holdout->train) within thresholds.",
    "linkability_gate": "anonymeter linkability risk: upper end of the 95% CI below the threshold.",
    "tstr_gate": "Best TSTR AUROC on the real holdout >= ratio x best TRTR AUROC.",
    "inference_gate": "anonymeter attribute inference of the target and each sensitive column: lower end of each "
                      "risk's 95% CI within the threshold, with attacks enough to catch a copy.",
}


def read_gate(instance: dg.DagsterInstance, gate: str, asset: dg.AssetKey = CANDIDATE) -> tuple[GateRecord | None, dict]:
    """The latest stored evaluation of one gate check on `asset`, with what it was computed on, and
    its full result (metrics with thresholds and verdicts); (None, {}) when the check never ran."""
    rec = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(asset, gate))
    evaluation = rec.event.dagster_event.event_specific_data if rec and rec.event and rec.event.dagster_event else None
    if not isinstance(evaluation, dg.AssetCheckEvaluation):
        return None, {}
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    return (
        GateRecord(
            gate=gate, passed=evaluation.passed, candidate_sha256=meta.get("candidate_sha256"),
            thresholds_sha256=meta.get("gate_settings_sha256"), run_id=rec.run_id, reason=meta.get("reason", ""),
        ),
        meta.get("result", {}),
    )


def _gate_check(name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(name=name, asset=CANDIDATE, blocking=True, additional_ins=SPLITS, description=DESCRIPTIONS[name])
    def _check(
        context: dg.AssetCheckExecutionContext,
        synthetic_candidate: pd.DataFrame,
        train_split: pd.DataFrame,
        holdout_split: pd.DataFrame,
        settings: PipelineSettings,
        release_store: ReleaseStore,
    ) -> dg.AssetCheckResult:
        cfg = settings.run_config()
        schema = Schema.from_dict(train_split.attrs["schema"])
        result = run_gate(name, synthetic_candidate, train_split, holdout_split, schema, cfg)
        sha = frame_sha256(synthetic_candidate)
        if not result.passed:
            record_refusal(
                release_store.path, schema.dataset, context.run.run_id,
                {**result.to_dict(), "candidate_sha256": sha, "config": cfg.to_dict(), "at": utc_now()},
            )
        return dg.AssetCheckResult(
            passed=result.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=result.reason,
            metadata={
                "candidate_sha256": sha,
                "gate_settings_sha256": gate_settings_sha256(cfg),
                "reason": result.reason,
                "result": dg.MetadataValue.json(result.to_dict()),
                **{m.name: m.value for m in result.metrics if isinstance(m.value, (int, float))},
            },
        )

    return _check


GATE_CHECKS = [_gate_check(name) for name in GATE_EVALUATORS]
