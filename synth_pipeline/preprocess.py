"""From a raw table to the modelled table and its seeded, stratified train / holdout split."""

from dataclasses import dataclass

import pandas as pd
from sklearn.model_selection import train_test_split

from synth_pipeline.errors import BadInput
from synth_pipeline.schema import Schema, conform


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    holdout: pd.DataFrame


def model_table(raw: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """Remove identifiers and leaky columns, cast to the schema, and drop rows without a target
    (they can neither train a conditional model nor be scored)."""
    removed = [c for c in (*schema.identifiers, *schema.drop) if c in raw.columns]
    table = conform(raw.drop(columns=removed), schema)
    table = table[table[schema.target].notna()].reset_index(drop=True)
    if table.empty:
        raise BadInput(f"{schema.dataset}: no rows with a value in target column '{schema.target}'")
    return table


def split(table: pd.DataFrame, schema: Schema, *, holdout_fraction: float, seed: int) -> Split:
    """Stratified on the target so both sides keep the class balance; the holdout is the real
    reference for DCR, linkability (anonymeter's control set) and TSTR, and is never trained on."""
    counts = table[schema.target].value_counts()
    if len(counts) < 2:
        raise BadInput(f"{schema.dataset}: target '{schema.target}' has one class ({counts.index[0]!r})")
    if counts.min() < 2:
        raise BadInput(
            f"{schema.dataset}: target class {counts.idxmin()!r} has {counts.min()} row; "
            "a stratified train/holdout split needs at least 2 per class"
        )
    train, holdout = train_test_split(
        table, test_size=holdout_fraction, stratify=table[schema.target], random_state=seed
    )
    return Split(train.reset_index(drop=True), holdout.reset_index(drop=True))
