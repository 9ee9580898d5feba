"""What the gates and reports compute, in one place, for the Dagster checks and the CLI alike."""

from collections.abc import Callable
from dataclasses import replace

import pandas as pd

from synth_pipeline.config import RunConfig
from synth_pipeline.gates import (
    FIDELITY_FLOOR, GateResult, dcr_gate, fidelity_gate, inference_gate, linkability_gate, tstr_gate,
)
from synth_pipeline.metrics.attacks import inference, singling_out
from synth_pipeline.metrics.base import MetricResult, missing
from synth_pipeline.metrics.fidelity import column_pair_trends, column_shapes, fidelity_metrics
from synth_pipeline.metrics.privacy import dcr_metrics, linkability
from synth_pipeline.metrics.utility import augmentation, tstr
from synth_pipeline.schema import Schema

GateEvaluator = Callable[[pd.DataFrame, pd.DataFrame, pd.DataFrame, Schema, RunConfig], GateResult]


def _link_metric(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> MetricResult:
    return linkability(
        train, holdout, candidate, schema, n_attacks=cfg.link_attacks, n_neighbors=cfg.link_neighbors,
        seed=cfg.seed, threshold=cfg.thresholds.linkability_ci_high_max,
    )


def _dcr_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    return dcr_metrics(train, holdout, candidate, schema, seed=cfg.seed, k=cfg.small_cell_k,
                       ci_width=cfg.thresholds.dcr_ci_width_max)


def singling_out_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """anonymeter singling-out (report only): what the privacy report adds to the gates' metrics."""
    return [singling_out(train, holdout, candidate, schema, seed=cfg.seed)]


def attack_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """anonymeter singling-out (report only) and attribute inference of the target and the sensitive
    columns (what inference_gate judges)."""
    return [singling_out(train, holdout, candidate, schema, seed=cfg.seed),
            *inference(train, holdout, candidate, schema, seed=cfg.seed)]


def privacy_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """DCR, memorisation, exact copies and NNDR (synthetic->train vs holdout->train), linkability,
    anonymeter singling-out (report only) and attribute inference of the target and sensitive columns."""
    return [*_dcr_metrics(candidate, train, holdout, schema, cfg),
            _link_metric(candidate, train, holdout, schema, cfg),
            *attack_metrics(candidate, train, holdout, schema, cfg)]


def augmentation_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """Real train + synthetic minority rows vs real train alone, on the real holdout."""
    return augmentation(train, holdout, candidate, schema, seed=cfg.seed)


def utility_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """TSTR vs TRTR (AUROC, AUPRC with bootstrap CIs) on the real holdout per model family, their
    ratios, and the augmentation case (real train + synthetic minority rows vs real train alone)."""
    return [*tstr(train, holdout, candidate, schema, seed=cfg.seed),
            *augmentation_metrics(candidate, train, holdout, schema, cfg)]


def fidelity(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """Column shapes, pairwise trends and missing-value rates, synthetic vs train."""
    return fidelity_metrics(train, candidate, schema, seed=cfg.seed)


def _dcr(candidate, train, holdout, schema, cfg) -> GateResult:
    return dcr_gate(_dcr_metrics(candidate, train, holdout, schema, cfg), cfg.thresholds)


def _linkability(candidate, train, holdout, schema, cfg) -> GateResult:
    return linkability_gate(_link_metric(candidate, train, holdout, schema, cfg), cfg.thresholds)


def _tstr(candidate, train, holdout, schema, cfg) -> GateResult:
    return tstr_gate(tstr(train, holdout, candidate, schema, seed=cfg.seed), cfg.thresholds)


def _inference(candidate, train, holdout, schema, cfg) -> GateResult:
    return inference_gate(inference(train, holdout, candidate, schema, seed=cfg.seed), cfg.thresholds)


def fidelity_floor_metrics(candidate, train, holdout, schema: Schema, cfg: RunConfig) -> list[MetricResult]:
    """Column shapes and pair trends of the candidate against train, and of the real holdout against
    train (`<name>_floor`): what an independent real sample of this table scores."""
    def scores(rows: pd.DataFrame) -> list[MetricResult]:
        return [column_shapes(train, rows, schema), column_pair_trends(train, rows, schema, seed=cfg.seed)]

    floor = [replace(m, name=f"{m.name}_floor", compared=FIDELITY_FLOOR) for m in scores(holdout.reset_index(drop=True))]
    return scores(candidate) + floor


def _fidelity(candidate, train, holdout, schema, cfg) -> GateResult:
    return fidelity_gate(fidelity_floor_metrics(candidate, train, holdout, schema, cfg), cfg.thresholds)


GATE_EVALUATORS: dict[str, GateEvaluator] = {"dcr_gate": _dcr, "linkability_gate": _linkability, "tstr_gate": _tstr,
                                             "inference_gate": _inference, "fidelity_gate": _fidelity}


def run_gate(name: str, candidate, train, holdout, schema: Schema, cfg: RunConfig) -> GateResult:
    """Evaluate one gate; a gate whose metric cannot be computed refuses, it never passes silently."""
    try:
        return GATE_EVALUATORS[name](candidate, train, holdout, schema, cfg)
    except Exception as e:  # noqa: BLE001 - any failure to compute is a refusal with its reason
        m = missing(name, f"{type(e).__name__}: {e}")
        return GateResult(gate=name, passed=False, reason=f"could not compute: {m.error}", metrics=(m,))


REPORTS: dict[str, Callable[..., list[MetricResult]]] = {
    "fidelity": fidelity, "utility": utility_metrics, "privacy": privacy_metrics}


def evaluate_tables(
    *, train: pd.DataFrame, holdout: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema, cfg: RunConfig,
) -> tuple[tuple[GateResult, ...], dict[str, tuple[MetricResult, ...]]]:
    """Every gate and every report for existing tables (conformed to `schema`): what `evaluate`
    computes, without Dagster."""
    gates = tuple(run_gate(g, synthetic, train, holdout, schema, cfg) for g in GATE_EVALUATORS)
    reports = {name: tuple(fn(synthetic, train, holdout, schema, cfg)) for name, fn in REPORTS.items()}
    return gates, reports
