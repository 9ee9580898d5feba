"""`auto`: fit a portfolio of generators and keep the most useful one that passes the privacy screen.

Selection never sees the holdout the gates judge with: a seeded, stratified validation split is
carved from the training rows (`validation_fraction`), every candidate is fitted on the rest,
sampled and passed through the copy filter as the run will filter it (its own near-copy floor), and
judged on that validation split by the pipeline's own DCR, TSTR and fidelity gates
(default thresholds; anonymeter's slower attacks judge only the winner). The candidate with the
highest validation TSTR / TRTR among those that pass is refitted on all training rows, and the run's
gates judge it on the holdout like any other generator. `selection` (every
candidate's utility, privacy and fit time, and the choice) goes into the manifest and the report.
"""

import json
import time
from pathlib import Path
from typing import Any

import pandas as pd

from synth_pipeline.copies import filter_rare_copies, generator_redraw
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators.base import BaseGenerator, load_generator, make_generator, register
from synth_pipeline.registry import check_name

PORTFOLIO = ("gaussian_copula", "diffusion", "tvae")
DP_CANDIDATE = "mst"  # joins the portfolio when generator_params set epsilon
DP_GENERATORS = ("mst", "dp_diffusion")  # the candidates epsilon / delta are passed to
SCREEN_GATES = ("dcr_gate", "tstr_gate", "fidelity_gate")  # exact and quick; anonymeter's gates judge the winner
SELECTION_FILE = "selection.json"
CHOSEN_DIR = "chosen"


@register
class AutoGenerator(BaseGenerator):
    name = "auto"
    summary = ("portfolio: fits copula, diffusion, TVAE (+ mst when epsilon is set) and keeps the most useful "
               "that passes the gates on a validation split carved from train")

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
        if name in DP_GENERATORS:
            params.update({k: self.params[k] for k in ("epsilon", "delta") if self.params[k] is not None})
        return params

    def _make(self, name: str) -> BaseGenerator:
        return make_generator(name, device=self.device, **self._candidate_params(name))

    def _fit(self, table: pd.DataFrame, seed: int) -> None:
        from synth_pipeline.config import RunConfig
        from synth_pipeline.evaluation import run_gate
        from synth_pipeline.near_copies import distance_floor, quantile_for
        from synth_pipeline.preprocess import split

        try:
            carved = split(table, self.schema, holdout_fraction=self.params["validation_fraction"], seed=seed)
        except BadInput as e:
            raise GeneratorError(f"auto: cannot carve a validation split from train ({e})") from None
        screen = RunConfig(seed=seed)  # default thresholds; the run's own judge the winner on the holdout
        rows = []
        for name in self.params["candidates"]:
            start = time.perf_counter()
            try:
                gen = self._make(name)
                gen.fit(carved.train, self.schema, target=self.target, seed=seed)
                synthetic = gen.sample(len(carved.train), seed=seed)
                synthetic, copies = filter_rare_copies(  # as the run will filter the chosen one's rows
                    synthetic, train=carved.train, schema=self.schema, k=screen.small_cell_k,
                    redraw=generator_redraw(gen, self.target), seed=seed,
                    near=distance_floor(carved.train, self.schema, quantile_for(None, gen)))
            except GeneratorError as e:
                rows.append({"generator": name, "passed": False, "reason": f"did not fit: {e}"})
                continue
            if not copies.passed:  # the run refuses here, before any gate
                rows.append({"generator": name, "passed": False, "reason": copies.reason()})
                continue
            fit_s = time.perf_counter() - start
            gates = [run_gate(g, synthetic, carved.train, carved.holdout, self.schema, screen) for g in SCREEN_GATES]
            metrics = {m.name: m for g in gates for m in g.metrics}
            refused = [g.reason for g in gates if not g.passed]
            rows.append({"generator": name, "tstr_ratio": metrics["tstr_ratio"].value,
                         "tstr_ratio_ci": metrics["tstr_ratio"].ci, "dcr_share": metrics["dcr_share"].value,
                         "memorisation_rate": metrics["memorisation_rate"].value,
                         "column_pair_trends": metrics["column_pair_trends"].value,
                         "passed": not refused, "reason": " ".join(refused) or "passes " + ", ".join(SCREEN_GATES),
                         "fit_seconds": round(fit_s, 1)})
        passing = [r for r in rows if r["passed"]]
        if not passing:
            reasons = "; ".join(f"{r['generator']}: {r['reason']}" for r in rows)
            raise GeneratorError(f"auto: no candidate passes the screen on the validation split ({reasons})")
        best = max(passing, key=lambda r: r["tstr_ratio"])  # the first of equals, in portfolio order
        self.chosen = self._make(best["generator"])
        self.chosen.fit(table, self.schema, target=self.target, seed=seed)
        self.selection = {"chosen": best["generator"], "validation_rows": len(carved.holdout),
                          "fit_rows": len(carved.train), "screen": list(SCREEN_GATES),
                          "rule": "highest validation tstr_ratio among the candidates that pass every screen gate "
                                  "on the validation split (default thresholds)", "candidates": rows}

    @property
    def near_copy_quantile(self) -> float:
        """The chosen generator's near-copy floor (the pipeline applies it as to that family)."""
        return getattr(self.chosen, "near_copy_quantile", 0.0)

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
