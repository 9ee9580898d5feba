"""validated_table -> train_split, holdout_split (stratified, seeded)."""

import dagster as dg
import pandas as pd

from assets.refusal import final_on_bad_input
from resources import PipelineSettings
from synth_pipeline.preprocess import split
from synth_pipeline.schema import Schema

GROUP = "tabular"


@dg.multi_asset(
    group_name=GROUP,
    outs={
        "train_split": dg.AssetOut(description="Real rows the generator learns from.", kinds={"pandas"}),
        "holdout_split": dg.AssetOut(
            description="Real rows never trained on: the reference for DCR, linkability and TSTR.", kinds={"pandas"}
        ),
    },
)
@final_on_bad_input
def train_holdout_split(context: dg.AssetExecutionContext, validated_table: pd.DataFrame, settings: PipelineSettings):
    cfg = settings.run_config()
    schema = Schema.from_dict(validated_table.attrs["schema"])
    parts = split(validated_table, schema, holdout_fraction=cfg.holdout_fraction, seed=cfg.seed)
    outputs = []
    for name, frame in (("train_split", parts.train), ("holdout_split", parts.holdout)):
        frame.attrs = dict(validated_table.attrs)
        counts = frame[schema.target].value_counts().to_dict()
        outputs.append(
            dg.Output(frame, output_name=name, metadata={"rows": len(frame), "class_counts": dg.MetadataValue.json(counts)})
        )
    return tuple(outputs)
