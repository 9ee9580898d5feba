"""Copies judged by what they reveal (synth_pipeline.copies): row matching, the rare-copy filter with
its redraws, the cohort check, and the rule on real-shaped tables — an ordinary clinical table the
old "exact-copy rate ≤ the holdout's" rule refused by chance, and FLCHAIN cut to four coarse columns,
where the filter would bend the cohort (refused) unless age is coarsened (published)."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from synth_pipeline import preprocess
from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig
from synth_pipeline.copies import (
    cohort_change, filter_rare_copies, generator_redraw, rare_copy_mask, redraw_seed, training_shares,
)
from synth_pipeline.data import load_dataset
from synth_pipeline.gates import dcr_gate
from synth_pipeline.generators import make_generator
from synth_pipeline.hashing import frame_sha256, row_hashes
from synth_pipeline.metrics.privacy import dcr_metrics
from synth_pipeline.schema import ColumnSpec, Schema

SCHEMA = Schema("toy", "cls", (ColumnSpec("v", "numeric"), ColumnSpec("g", "categorical"),
                               ColumnSpec("cls", "categorical")))


def test_row_hashes_are_equal_exactly_for_equal_rows():
    cols = ["a", "b"]
    rows = pd.DataFrame({"a": [1.0, np.nan, 3.0, 0.0], "b": ["x", "y", None, "z"]})
    same = pd.DataFrame({"a": [1.0 * (1 + 1e-15), np.nan, 3.0, -0.0], "b": ["x", "y", None, "z"]})
    assert (row_hashes(rows, cols) == row_hashes(same, cols)).all()  # float noise, -0.0, missing = missing
    moved = pd.DataFrame({"a": [1.01, 2.0, 3.0, 0.0], "b": ["x", "y", "nan", "Z"]})
    assert (row_hashes(rows, cols) != row_hashes(moved, cols)).all()
    assert len(set(row_hashes(rows, cols))) == 4


def test_training_shares_count_who_holds_each_combination():
    train = pd.DataFrame({"v": [1.0] * 5 + [2.0] * 2 + [3.0], "g": ["a"] * 5 + ["b"] * 2 + ["c"]})
    rows = pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0, 1.0], "g": ["a", "b", "c", "d", "b"]})
    assert training_shares(rows, train=train, columns=["v", "g"]).tolist() == [5, 2, 1, 0, 0]
    assert rare_copy_mask(rows, train=train, columns=["v", "g"], k=5).tolist() == [False, True, True, False, False]
    assert rare_copy_mask(rows, train=train, columns=["v", "g"], k=2).tolist() == [False, False, True, False, False]


def _toy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"v": rng.normal(size=n).round(6), "g": rng.choice(["a", "b"], n),
                         "cls": rng.choice(["no", "yes"], n, p=[0.7, 0.3])})


def test_rare_copies_are_redrawn_in_their_class_and_common_ones_kept():
    train = pd.concat([_toy(200, 0), pd.DataFrame({"v": [9.0] * 6, "g": ["a"] * 6, "cls": ["yes"] * 6})],
                      ignore_index=True)
    candidate = pd.concat([_toy(300, 1), train.iloc[[3, 10, 50]], train.iloc[[200, 201]]], ignore_index=True)
    calls = []

    def redraw(n, seed, labels):
        calls.append((n, seed, list(labels)))
        return _toy(n, seed).assign(cls=labels)

    out, res = filter_rare_copies(candidate, train=train, schema=SCHEMA, k=5, redraw=redraw, seed=7)
    assert (res.rare_copies, res.redrawn, res.removed, res.rows_after) == (3, 3, 0, 305)
    assert calls == [(3, redraw_seed(7, 1), list(train["cls"].iloc[[3, 10, 50]]))]  # one row per copy, its class
    assert not rare_copy_mask(out, train=train, columns=SCHEMA.names, k=5).any()
    assert (out["v"] == 9.0).sum() == 2  # copies of the common combination (6 training rows) stay
    pd.testing.assert_frame_equal(out.iloc[:300], candidate.iloc[:300].reset_index(drop=True), check_dtype=False)
    assert (out["cls"].value_counts() == candidate["cls"].value_counts()).all()
    assert res.passed and res.change.passed and res.change.changed_rows == 3
    again, _ = filter_rare_copies(candidate, train=train, schema=SCHEMA, k=5, redraw=redraw, seed=7)
    assert frame_sha256(again) == frame_sha256(out)  # deterministic for a seed
    json.dumps(res.to_dict())  # the manifest record is plain JSON


def test_copies_that_redraws_cannot_replace_are_removed_and_a_filter_that_empties_refuses():
    train = _toy(100, 0)
    copy_again = lambda n, seed, labels: train.sample(n, random_state=seed % 2**32)  # noqa: E731
    out, res = filter_rare_copies(train, train=train, schema=SCHEMA, k=5, redraw=copy_again, seed=0, rounds=2)
    assert (res.rare_copies, res.redrawn, res.removed, res.rows_after, len(out)) == (100, 0, 100, 0, 0)
    assert res.redraw_seeds == (redraw_seed(0, 1), redraw_seed(0, 2)) and redraw_seed(0, 1) != redraw_seed(0, 2)
    assert not res.passed and "removed all 100 candidate rows" in res.reason()


def test_the_cohort_check_refuses_a_bent_group_share_and_not_a_random_change():
    """The bending rule on its own: the same number of rows changed, at random (passes) or all from
    one group (refused, naming the column)."""
    before = _toy(2000, 3)
    rng = np.random.default_rng(0)
    random_rows = rng.choice(2000, 300, replace=False)
    random_change = before.drop(index=random_rows).reset_index(drop=True)
    ok = cohort_change(before, random_change, schema=SCHEMA, changed=300, added=0, seed=0)
    assert ok.passed, ok.columns
    group_b = np.flatnonzero(before["g"] == "b")[:300]
    bent = cohort_change(before, before.drop(index=group_b).reset_index(drop=True), schema=SCHEMA, changed=300,
                         added=0, seed=0)
    assert bent.bent == ("g",)
    g = next(c for c in bent.columns if c.column == "g")
    assert g.value > g.bound > 0 and "moved g (TV" in bent.sentence(2000)
    tail = np.argsort(before["v"].to_numpy())[-300:]  # the largest values: a shifted numeric column
    shifted = cohort_change(before, before.drop(index=tail).reset_index(drop=True), schema=SCHEMA, changed=300,
                            added=0, seed=0)
    assert "v" in shifted.bent


# --- real-shaped tables -----------------------------------------------------------------------------

def clinical_table(seed: int = 4, n: int = 3000) -> pd.DataFrame:
    """An ordinary clinical table: age (integer), sex, BMI (1 decimal), systolic / diastolic blood
    pressure (integers), smoker, diabetes (the target). With seed 4, 3 of the copula's 2,100 rows
    equal training rows by chance against 1 of 900 holdout rows: "exact-copy rate ≤ the holdout's"
    refused it."""
    rng = np.random.default_rng(seed)
    age = rng.integers(45, 76, n)
    sex = rng.choice(["F", "M"], n)
    bmi = np.round(rng.normal(27 + 0.05 * (age - 50), 3.0, n), 1)
    sbp = np.round(rng.normal(110 + 0.5 * age, 10, n)).astype(int)
    dbp = np.round(0.5 * sbp + rng.normal(15, 5, n)).astype(int)
    smoker = rng.choice(["no", "yes"], n, p=[0.85, 0.15])
    logit = -9 + 0.06 * age + 0.12 * bmi + 0.01 * sbp + 0.4 * (smoker == "yes")
    diabetes = np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "yes", "no")
    return pd.DataFrame({"age": age, "sex": sex, "bmi": bmi, "sbp": sbp, "dbp": dbp, "smoker": smoker,
                         "diabetes": diabetes})


def test_the_copula_publishes_the_clinical_table(tmp_path: Path):
    path = tmp_path / "clinical.csv"
    clinical_table().to_csv(path, index=False)
    cfg = RunConfig.from_dict({"data": str(path), "target": "diabetes", "generator": "gaussian_copula"})
    outcome = run_release(cfg, tmp_path / "out", instance=dg.DagsterInstance.ephemeral())
    assert outcome.status == "published", outcome.message
    manifest = json.loads((Path(outcome.path) / "manifest.json").read_text())
    record = manifest["copy_filter"]
    assert (record["rare_copies"], record["redrawn"], record["removed"]) == (3, 3, 0) and record["passed"]
    dcr = next(g for g in manifest["gates"] if g["gate"] == "dcr_gate")
    exact = next(m for m in dcr["metrics"] if m["name"] == "exact_copies")["detail"]
    holdout_matches = exact["holdout_common_count"] + exact["holdout_rare_count"]
    assert record["rare_copies"] / record["rows_before"] > holdout_matches / exact["n_holdout"]  # the old rule's refusal
    assert exact["synthetic_rare_count"] == 0 and dcr["passed"]


def _coarse(tmp_path: Path, band: int) -> tuple[pd.DataFrame, pd.DataFrame, Schema]:
    """FLCHAIN's age (in `band`-year steps), sex, mgus and death, read from a CSV as a user's file is,
    split as the pipeline splits it (seed 0)."""
    raw = load_dataset("flchain").raw[["age", "sex", "mgus", "death"]].copy()
    raw["age"] = band * (raw["age"] // band)
    path = tmp_path / f"coarse{band}.csv"
    raw.to_csv(path, index=False)
    lt = load_dataset(str(path), target="death")
    s = preprocess.split(preprocess.model_table(lt.raw, lt.schema), lt.schema, holdout_fraction=0.3, seed=0)
    return s.train, s.holdout, lt.schema


@pytest.fixture(scope="module")
def copula_on_coarse(tmp_path_factory):
    def run(band: int):
        train, holdout, schema = _coarse(tmp_path_factory.mktemp(f"coarse{band}"), band)
        gen = make_generator("gaussian_copula")
        gen.fit(train, schema, target=schema.target, seed=0)
        candidate = gen.sample(len(train), seed=0)
        out, res = filter_rare_copies(candidate, train=train, schema=schema, k=5,
                                      redraw=generator_redraw(gen, schema.target), seed=0)
        return train, holdout, schema, candidate, out, res
    return run


def test_a_filter_that_bends_the_cohort_is_refused_on_the_coarse_table(copula_on_coarse):
    """Age in years: the copula's rows with mgus = yes (1.5% of patients) mostly land on age / sex /
    death combinations 1-4 training patients share; redrawing them drops that group's share beyond the
    sampling noise of a release this size, and the filter refuses, saying so."""
    train, _, _, candidate, out, res = copula_on_coarse(1)
    assert res.rare_copies > 100 and not res.passed
    assert "mgus" in res.change.bent
    assert (out["mgus"] == "yes").mean() < 0.75 * (candidate["mgus"] == "yes").mean()
    assert res.reason().startswith("the copy filter bent the cohort:") and "mgus (TV" in res.reason()


def test_the_copula_passes_the_coarse_table_with_age_in_five_year_bands(copula_on_coarse):
    """Coarsened as the refusal advises, the filter redraws a few rows without bending the cohort, and
    the many copies of common combinations are judged against the holdout's own matches."""
    train, holdout, schema, _, out, res = copula_on_coarse(5)
    assert res.passed and 0 < res.rare_copies < 50, res.reason()
    gate = dcr_gate(dcr_metrics(train, holdout, out, schema, seed=0, k=5), RunConfig().thresholds)
    exact = next(m for m in gate.metrics if m.name == "exact_copies").detail
    assert exact["synthetic_common_count"] > 1000 and exact["holdout_rate"] > 0.9  # common copies, a lot
    assert exact["synthetic_rare_count"] == 0
    assert gate.passed, gate.reason
