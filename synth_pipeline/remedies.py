"""What to try after a refusal: one sentence per failing gate, naming the remedy that was measured to
work for that kind of failure (benchmarks/GENERATORS.md and benchmarks/PRIVACY_GATES.md), so a
refusal never leaves its user guessing. Pure: gate results in, advice out."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# Generators that release real rows or interpolations between them: every one is refused by the DCR or
# linkability gate on all three bundled tables (benchmarks/GENERATORS.md, 3 seeds each).
ROW_COPYING = frozenset({"copy", "perturbed_copy", "ros", "rus", "smote", "borderline_smote", "adasyn"})


@dataclass(frozen=True)
class Measured:
    """One generator's per-table means over the bundled tables × seeds 0 1 2 (benchmarks/GENERATORS.md,
    measured under the three gates before inference_gate and the rare-copy filter existed)."""

    generator: str
    published: str  # runs that passed every gate
    dcr_share: str
    linkability: str
    tstr_ratio: str


MEASURED = {
    "gaussian_copula": Measured("gaussian_copula", "8 of 9", "0.488–0.511", "0.000–0.003", "0.888–0.980"),
    "tvae": Measured("tvae", "6 of 9", "0.511–0.515", "0.000–0.005", "0.946–0.980"),
    "diffusion": Measured("diffusion", "8 of 9", "0.521–0.531", "0.000–0.026", "0.941–0.998"),
}


def _alternative(generator: str, prefer: Sequence[str]) -> Measured:
    return next(MEASURED[g] for g in prefer if g != generator)


def remedy(gate: str, *, reason: str, generator: str, detail: Mapping | None = None) -> str:
    """The most likely fix for one failing gate of a run that used `generator`. `detail` is the gate's
    first metric's detail (rows_needed, the column an attack succeeded on, …) when it has one."""
    detail = dict(detail or {})
    copying = generator in ROW_COPYING
    if gate == "generator":
        alt = MEASURED["gaussian_copula"]
        return (f"Try --generator {alt.generator}: it fitted every bundled table and published {alt.published} "
                f"benchmark runs; {generator} could not handle this table.")
    if gate in ("dcr_gate", "copy_filter") or (gate == "linkability_gate" and copying):
        if copying:
            alt = MEASURED["gaussian_copula"]
            return (f"{generator} releases real rows or near-copies and is refused on every bundled table: use a "
                    f"model-based generator such as --generator {alt.generator} (DCR share {alt.dcr_share}, "
                    f"published {alt.published}).")
        if gate == "copy_filter":
            return ("Removing copies of rare training rows bent the cohort: pool rare categories (small_cell_k), "
                    "drop near-unique columns (--drop / --id-columns), or try --generator gaussian_copula, which "
                    "reproduces few rows exactly.")
        alt = _alternative(generator, ("gaussian_copula", "tvae"))
        return (f"Try --generator {alt.generator}: its rows sit further from the training rows (DCR share "
                f"{alt.dcr_share} on the bundled tables, published {alt.published}), or raise near_copy_quantile "
                f"in the run config: the copy filter then redraws rows closer to a training row than that share of "
                f"patients are to each other (diffusion's default 0.13 lowered its DCR share by 0.02–0.03).")
    if gate == "linkability_gate":
        needed = detail.get("rows_needed")
        if isinstance(needed, int) and "not enough evidence" in reason:
            return (f"Not enough evidence rather than a leak: about {needed} holdout rows (checked to narrow the "
                    f"interval enough) would be needed — add patients, or raise holdout_fraction.")
        if "not enough evidence" in reason:
            return ("Not enough evidence rather than a leak, and this table is too small to gather it: add patients, "
                    "or drop identifying columns an attacker could link on (--drop).")
        alt = _alternative(generator, ("gaussian_copula", "tvae"))
        return (f"Records can be linked back: try --generator {alt.generator} (linkability {alt.linkability} on the "
                f"bundled tables) or drop quasi-identifying columns (--drop).")
    if gate == "inference_gate":
        column = detail.get("secret") or detail.get("column")
        about = f" '{column}'" if column else ""
        alt = _alternative(generator, ("gaussian_copula", "tvae"))
        return (f"The sensitive column{about} can be guessed for training patients: drop it (--drop) if it need not "
                f"be released, coarsen or pool it, or try --generator {alt.generator}.")
    if gate == "tstr_gate":
        alt = _alternative(generator, ("diffusion", "gaussian_copula", "tvae"))
        return (f"The synthetic rows do not predict the target well enough: try --generator {alt.generator} "
                f"(TSTR/TRTR {alt.tstr_ratio} on the bundled tables), or give the generator more rows.")
    if gate == "fidelity_gate":
        alt = _alternative(generator, ("diffusion", "gaussian_copula"))
        worst = detail.get("worst")
        where = f" (worst column: '{worst}')" if worst and "column shapes" in reason.split(";")[0] else ""
        return (f"The synthetic columns{where} or their pairwise relations are much further from the training rows "
                f"than a fresh real sample of this table is: the generator collapsed. Try --generator "
                f"{alt.generator} (published {alt.published} benchmark runs, shape and trend errors at the real-sample "
                f"floor); on few coarse columns, the copy filter's record in the manifest (copy_filter) says how "
                f"many rows it had to redraw.")
    return "Read the gate's reason above; re-run with another generator or more rows."
