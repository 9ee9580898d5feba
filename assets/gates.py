"""The release gates as blocking ERROR checks on synthetic_candidate.

Each check records the candidate's sha256 and the gate settings' digest in its metadata, so the
release step can prove the verdict it reads belongs to the candidate it is about to publish. A
failing gate also writes the run's refusal record: downstream assets (release included) are
skipped by Dagster once a blocking check fails, so the check is the last step that can say why.
"""

import dagster as dg
import pandas as pd

from assets.refusal import note_passed, record
from assets.run_log import run_events
from resources import DaskCluster, PipelineSettings, ReleaseStore
from synth_pipeline.config import gate_settings_sha256
from synth_pipeline.evaluation import GATE_EVALUATORS, run_gate
from synth_pipeline.gates import GateResult
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.kernel import GateRecord
from synth_pipeline.schema import Schema

CANDIDATE = dg.AssetKey("synthetic_candidate")
SPLITS = {"train_split": dg.AssetIn("train_split"), "holdout_split": dg.AssetIn("holdout_split")}
DESCRIPTIONS = {
    "dcr_gate": "Memorisation rate, DCR share and exact copies (synthetic->train vs holdout->train) within thresholds.",
    "linkability_gate": "anonymeter linkability risk: upper end of the 95% CI below the threshold.",
    "tstr_gate": "Best TSTR AUROC on the real holdout >= ratio x best TRTR AUROC.",
    "inference_gate": "anonymeter attribute inference of the target and each sensitive column: lower end of each "
                      "risk's 95% CI within the threshold, with attacks enough to catch a copy.",
    "fidelity_gate": "Column shapes and pair trends (synthetic vs train) within a margin of the real holdout's own "
                     "scores against train (the real-sample floor): refuses a collapsed candidate.",
}


def read_gate(instance: dg.DagsterInstance, gate: str, run_id: str,
              asset: dg.AssetKey = CANDIDATE) -> tuple[GateRecord | None, dict]:
    """This run's own evaluation of one gate check on `asset` (the last, if the check ran twice), with
    what it was computed on, and its full result (metrics with thresholds and verdicts); (None, {})
    when the check did not run in this run. Other runs' results are never read (assets/run_log.py)."""
    found = [
        e.dagster_event.event_specific_data for e in run_events(instance, run_id, dg.DagsterEventType.ASSET_CHECK_EVALUATION)
        if isinstance(e.dagster_event.event_specific_data, dg.AssetCheckEvaluation)
        and e.dagster_event.event_specific_data.asset_check_key == dg.AssetCheckKey(asset, gate)
    ]
    if not found:
        return None, {}
    evaluation = found[-1]
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    return (
        GateRecord(
            gate=gate, passed=evaluation.passed, candidate_sha256=meta.get("candidate_sha256"),
            thresholds_sha256=meta.get("gate_settings_sha256"), run_id=run_id, reason=meta.get("reason", ""),
        ),
        meta.get("result", {}),
    )


def gate_check_result(context: dg.AssetCheckExecutionContext, store: ReleaseStore, dataset: str, result: GateResult,
                      *, candidate_sha256: str, settings_sha256: str, config: dict) -> dg.AssetCheckResult:
    """Both arms' gate checks end here: the verdict with what it was computed on (the release kernel
    reads these back for this run), and the run's refusal record when the gate refuses — or, when it
    passes after another gate refused, its result joins that record."""
    if result.passed:
        note_passed(context, store, dataset, result.gate, result.to_dict())
    else:
        record(context, store, dataset, result.gate, result.reason, config=config, result=result.to_dict(),
               candidate_sha256=candidate_sha256)
    return dg.AssetCheckResult(
        passed=result.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=result.reason,
        metadata={
            "candidate_sha256": candidate_sha256,
            "gate_settings_sha256": settings_sha256,
            "reason": result.reason,
            "result": dg.MetadataValue.json(result.to_dict()),
            **{m.name: m.value for m in result.metrics if isinstance(m.value, (int, float))},
        },
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
        cluster: DaskCluster,
    ) -> dg.AssetCheckResult:
        cfg = settings.run_config()
        schema = Schema.from_dict(train_split.attrs["schema"])
        with cluster.active():
            result = run_gate(name, synthetic_candidate, train_split, holdout_split, schema, cfg)
        return gate_check_result(context, release_store, schema.dataset, result,
                                 candidate_sha256=frame_sha256(synthetic_candidate),
                                 settings_sha256=gate_settings_sha256(cfg), config=cfg.to_dict())

    return _check


GATE_CHECKS = [_gate_check(name) for name in GATE_EVALUATORS]
