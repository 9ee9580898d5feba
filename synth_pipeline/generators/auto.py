"""`auto`: fit a portfolio of generators and keep the most useful one that passes the privacy screen.

Selection never sees the holdout the gates judge with: a seeded, stratified validation split is
carved from the training rows (`validation_fraction`), every candidate is fitted on the rest and
sampled, and each is scored on that validation split with the pipeline's own metrics — TSTR / TRTR
(`tstr_ratio`, what the utility gate reads) and the DCR metrics judged by the DCR gate with the
default thresholds. The most useful candidate that passes is then refitted on all training rows,
and the run's gates judge it on the holdout like any other generator. `selection` (every
candidate's utility, privacy and fit time, and the choice) goes into the manifest and the report.
"""

import json
import time
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from synth_pipeline.config import Thresholds
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators.base import BaseGenerator, load_generator, make_generator, register
from synth_pipeline.registry import check_name

PORTFOLIO = ("gaussian_copula", "diffusion", "tvae")
DP_CANDIDATE = "mst"  # joins the portfolio when generator_params set epsilon
SELECTION_FILE = "selection.json"
CHOSEN_DIR = "chosen"


@register
class AutoGenerator(BaseGenerator):
    name: ClassVar[str] = "auto"
    summary: ClassVar[str] = ("portfolio: fits copula, diffusion, TVAE (+ mst when epsilon is set) and keeps the most "
                              "useful that passes the DCR screen on a validation split carved from train")

    def __init__(self, candidates: list[str] | None = None, validation_fraction: float = 0.2,
                 epsilon: float | None = None, delta: float | None = None,
                 candidate_params: dict[str, dict[str, Any]] | None = None) -> None:
        names = list(candidates or [*PORTFOLIO, *([DP_CANDIDATE] if epsilon is not None else [])])
        if not names or self.name in names:
            raise BadInput(f"auto: candidates {names} must name one or more generators other than 'auto'")
        for n in names:
            check_name("synth_pipeline.generators", "generator", n, "generator_params.candidates")
        if not 0.05 <= validation_fraction <= 0.5:
            raise BadInput(f"auto: validation_fraction {validation_fraction} must be between 0.05 and 0.5")
        super().__init__(candidates=names, validation_fraction=validation_fraction, epsilon=epsilon, delta=delta,
                         candidate_params=candidate_params or {})
        self.chosen: BaseGenerator | None = None
        self.selection: dict[str, Any] | None = None

    def _candidate_params(self, name: str) -> dict[str, Any]:
        params = dict(self.params["candidate_params"].get(name, {}))
        if name == DP_CANDIDATE:
            params.update({k: self.params[k] for k in ("epsilon", "delta") if self.params[k] is not None})
        return params

    def _make(self, name: str) -> BaseGenerator:
        return make_generator(name, device=self.device, **self._candidate_params(name))

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        from synth_pipeline.gates import dcr_gate
        from synth_pipeline.metrics.privacy import dcr_metrics
        from synth_pipeline.metrics.utility import tstr
        from synth_pipeline.preprocess import split

        try:
            carved = split(table, self.schema, holdout_fraction=self.params["validation_fraction"], seed=seed)
        except BadInput as e:
            raise GeneratorError(f"auto: cannot carve a validation split from train ({e})") from None
        rows = []
        for name in self.params["candidates"]:
            start = time.perf_counter()
            try:
                gen = self._make(name)
                gen.fit(carved.train, self.schema, target=self.target, seed=seed)
                synthetic = gen.sample(len(carved.train), seed=seed)
            except GeneratorError as e:
                rows.append({"generator": name, "passed": False, "reason": f"did not fit: {e}"})
                continue
            fit_s = time.perf_counter() - start
            utility = next(m for m in tstr(carved.train, carved.holdout, synthetic, self.schema, seed=seed)
                           if m.name == "tstr_ratio")
            privacy = dcr_metrics(carved.train, carved.holdout, synthetic, self.schema, seed=seed)
            gate = dcr_gate(privacy, Thresholds())
            by_name = {m.name: m.value for m in privacy}
            rows.append({"generator": name, "tstr_ratio": utility.value, "tstr_ratio_ci": utility.ci,
                         "dcr_share": by_name["dcr_share"], "memorisation_rate": by_name["memorisation_rate"],
                         "passed": gate.passed and utility.value is not None, "reason": gate.reason,
                         "fit_seconds": round(fit_s, 1)})
        passing = [r for r in rows if r["passed"]]
        if not passing:
            reasons = "; ".join(f"{r['generator']}: {r['reason']}" for r in rows)
            raise GeneratorError(f"auto: no candidate passes the privacy screen on the validation split ({reasons})")
        best = max(passing, key=lambda r: r["tstr_ratio"])  # the first of equals, in portfolio order
        self.chosen = self._make(best["generator"])
        self.chosen.fit(table, self.schema, target=self.target, seed=seed)
        self.selection = {"chosen": best["generator"], "validation_rows": len(carved.holdout),
                          "fit_rows": len(carved.train), "rule": "highest validation tstr_ratio among candidates "
                          "whose validation DCR metrics pass dcr_gate (default thresholds)", "candidates": rows}

    @property
    def privacy(self) -> dict[str, Any] | None:
        """The chosen generator's differential-privacy record, if it has one."""
        return getattr(self.chosen, "privacy", None)

    def _draw(self, k: int, seed: int, label: str | None) -> pd.DataFrame:
        return self.chosen._draw(k, seed, label)

    def _save_state(self, path: Path) -> list[str]:
        self.chosen.save(path / CHOSEN_DIR)
        (path / SELECTION_FILE).write_text(json.dumps(self.selection, indent=2, sort_keys=True, default=float))
        return [SELECTION_FILE, f"{CHOSEN_DIR}/generator.json"]

    def _load_state(self, path: Path) -> None:
        self.chosen = load_generator(path / CHOSEN_DIR, device=self.device)
        self.selection = json.loads((path / SELECTION_FILE).read_text())
