"""The three release gates as blocking ERROR checks on synthetic_candidate.

Each check records the candidate's sha256 and the gate settings' digest in its metadata, so the
release step can prove the verdict it reads belongs to the candidate it is about to publish. A
failing gate also writes the run's refusal record: downstream assets (release included) are
skipped by Dagster once a blocking check fails, so the check is the last step that can say why.
"""

from collections.abc import Callable

import dagster as dg
import pandas as pd

from resources import PipelineSettings, ReleaseStore
from synth_pipeline.config import RunConfig, gate_settings_sha256
from synth_pipeline.gates import GateResult, dcr_gate as dcr_verdict, linkability_gate as link_verdict, tstr_gate as tstr_verdict
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.metrics.base import missing
from synth_pipeline.metrics.privacy import dcr_metrics, linkability
from synth_pipeline.metrics.utility import tstr
from synth_pipeline.release import record_refusal, utc_now
from synth_pipeline.schema import Schema

CANDIDATE = dg.AssetKey("synthetic_candidate")
SPLITS = {"train_split": dg.AssetIn("train_split"), "holdout_split": dg.AssetIn("holdout_split")}
Evaluate = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Schema, RunConfig], GateResult]


def _run_gate(
    context: dg.AssetCheckExecutionContext,
    name: str,
    evaluate: Evaluate,
    candidate: pd.DataFrame,
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    settings: PipelineSettings,
    store: ReleaseStore,
) -> dg.AssetCheckResult:
    cfg = settings.run_config()
    schema = Schema.from_dict(train.attrs["schema"])
    try:
        result = evaluate(candidate, train, holdout, schema, cfg)
    except Exception as e:  # a gate that cannot compute its metric refuses; it never passes silently
        context.log.exception(f"{name} could not be computed")
        m = missing(name, f"{type(e).__name__}: {e}")
        result = GateResult(gate=name, passed=False, reason=f"could not compute: {m.error}", metrics=(m,))
    sha = frame_sha256(candidate)
    if not result.passed:
        record_refusal(
            store.path, schema.dataset, context.run.run_id,
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


def _dcr(candidate, train, holdout, schema, cfg) -> GateResult:
    return dcr_verdict(dcr_metrics(train, holdout, candidate, schema, seed=cfg.seed), cfg.thresholds)


def _link(candidate, train, holdout, schema, cfg) -> GateResult:
    m = linkability(
        train, holdout, candidate, schema, n_attacks=cfg.link_attacks, seed=cfg.seed,
        threshold=cfg.thresholds.linkability_ci_high_max,
    )
    return link_verdict(m, cfg.thresholds)


def _tstr(candidate, train, holdout, schema, cfg) -> GateResult:
    return tstr_verdict(tstr(train, holdout, candidate, schema, seed=cfg.seed), cfg.thresholds)


def _check(name: str, evaluate: Evaluate, description: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(name=name, asset=CANDIDATE, blocking=True, additional_ins=SPLITS, description=description)
    def _gate(
        context: dg.AssetCheckExecutionContext,
        synthetic_candidate: pd.DataFrame,
        train_split: pd.DataFrame,
        holdout_split: pd.DataFrame,
        settings: PipelineSettings,
        release_store: ReleaseStore,
    ) -> dg.AssetCheckResult:
        return _run_gate(context, name, evaluate, synthetic_candidate, train_split, holdout_split, settings, release_store)

    return _gate


dcr_gate = _check(
    "dcr_gate", _dcr,
    "Memorisation rate, DCR share and exact copies (synthetic->train vs holdout->train) within thresholds.",
)
linkability_gate = _check(
    "linkability_gate", _link, "anonymeter linkability risk: upper end of the 95% CI below the threshold."
)
tstr_gate = _check("tstr_gate", _tstr, "Best TSTR AUROC on the real holdout >= ratio x best TRTR AUROC.")
GATE_CHECKS = [dcr_gate, linkability_gate, tstr_gate]
