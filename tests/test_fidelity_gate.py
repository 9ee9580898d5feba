"""fidelity_gate on real rows: a fresh real sample passes against the floor measured on this table;
a collapsed candidate (one training row repeated, or columns shuffled independently where they
depend on each other) is refused, through the same evaluator the pipeline's check runs."""

import numpy as np
import pandas as pd

from synth_pipeline.config import RunConfig
from synth_pipeline.evaluation import run_gate
from synth_pipeline.schema import ColumnSpec, Schema

CFG = RunConfig(link_attacks=200)


def test_a_fresh_real_sample_passes_and_one_row_repeated_is_refused(fresh_data):
    train, holdout, fresh, schema = fresh_data
    real = run_gate("fidelity_gate", fresh.reset_index(drop=True), train, holdout, schema, CFG)
    assert real.passed, real.reason
    scores = {m.name: m.value for m in real.metrics}
    assert abs(scores["column_shapes"] - scores["column_shapes_floor"]) < 0.02  # two real samples score alike
    one_row = train.iloc[[0] * len(fresh)].reset_index(drop=True)
    refused = run_gate("fidelity_gate", one_row, train, holdout, schema, CFG)
    assert not refused.passed and "fidelity_gate refused: column shapes" in refused.reason


def _dependent(n: int, seed: int) -> pd.DataFrame:
    """Age, a flag that follows age, and a target that follows both: pair trends carry the table."""
    rng = np.random.default_rng(seed)
    age = rng.integers(20, 80, n)
    flag = np.where(age + rng.normal(0, 2, n) > 50, "yes", "no")
    target = np.where((flag == "yes") ^ (rng.random(n) < 0.02), "1", "0")
    return pd.DataFrame({"age": age.astype(float), "flag": flag, "cls": target})


def test_columns_shuffled_independently_are_refused_where_they_depend_on_each_other():
    schema = Schema("dependent", "cls", (ColumnSpec("age", "integer", min=0, max=120), ColumnSpec("flag", "categorical"),
                                         ColumnSpec("cls", "categorical")))
    train, holdout, fresh = _dependent(600, 0), _dependent(260, 1), _dependent(600, 2)
    assert run_gate("fidelity_gate", fresh, train, holdout, schema, CFG).passed
    rng = np.random.default_rng(3)
    shuffled = fresh.apply(lambda col: col.to_numpy()[rng.permutation(len(col))])
    refused = run_gate("fidelity_gate", shuffled, train, holdout, schema, CFG)
    assert not refused.passed and "pair trends" in refused.reason.split(";")[0]
    assert next(m for m in refused.metrics if m.name == "column_shapes").passed  # every column kept its shape
