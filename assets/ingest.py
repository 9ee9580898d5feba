"""raw_table -> validated_table: read the source, then type it and run the Great Expectations suite."""

import dagster as dg
import pandas as pd

from assets.refusal import final_on_bad_input
from resources import PipelineSettings
from synth_pipeline.data import load_dataset
from synth_pipeline.preprocess import model_table
from synth_pipeline.schema import Schema
from synth_pipeline.validation import require_valid, validate_table

GROUP = "tabular"
SOURCE = dg.AssetKey("raw_input")
raw_input = dg.AssetSpec(
    SOURCE, group_name=GROUP, kinds={"file"},
    description="The input table as it lies outside the pipeline (file or query). Each run observes it: "
                "path and sha256, the sha256 as its data version, so the lineage names the exact bytes read.",
)


@dg.asset(group_name=GROUP, kinds={"pandas"}, deps=[SOURCE])
@final_on_bad_input
def raw_table(context: dg.AssetExecutionContext, settings: PipelineSettings) -> pd.DataFrame:
    """The source table as read (bundled name, CSV / Parquet / ARFF path, or SQL query), with its schema."""
    cfg = settings.run_config()
    loaded = load_dataset(
        cfg.data, target=cfg.target, drop=cfg.drop, id_columns=cfg.id_columns, column_kinds=cfg.column_kinds,
        on_identifiers=cfg.on_identifiers, name=cfg.name, sql=cfg.sql, connection=cfg.connection,
        small_cell_k=cfg.small_cell_k, on_rare_categories=cfg.on_rare_categories, sensitive=cfg.sensitive_columns,
    )
    raw = loaded.raw.copy()
    inp = loaded.input_record()
    sha = inp["sha256"]
    raw.attrs = {
        "schema": loaded.schema.to_dict(),
        "input": {**inp, "rows": len(raw), "columns": len(raw.columns)},
    }
    context.log_event(dg.AssetObservation(
        asset_key=SOURCE, metadata={"dataset": loaded.schema.dataset, "path": str(loaded.source), "sha256": sha},
        tags={"dagster/data_version": sha},
    ))
    context.add_output_metadata(
        {"dataset": loaded.schema.dataset, "source": inp.get("path") or inp["sql"], "input_sha256": sha,
         "rows": len(raw)}
    )
    return raw


@dg.asset(group_name=GROUP, kinds={"pandas", "great_expectations"})
@final_on_bad_input
def validated_table(context: dg.AssetExecutionContext, raw_table: pd.DataFrame) -> pd.DataFrame:
    """Identifiers and leaky columns removed, typed to the schema, and validated; a failed
    expectation stops the run with the expectation and column named."""
    schema = Schema.from_dict(raw_table.attrs["schema"])
    table = model_table(raw_table, schema)
    report = validate_table(table, schema)
    context.add_output_metadata(
        {
            "expectations": len(report.outcomes),
            "failed_expectations": len(report.failures()),
            "removed_columns": [*schema.identifiers, *schema.drop],
            "validation": dg.MetadataValue.json(report.to_dict()),
        }
    )
    require_valid(report, schema.dataset)
    table.attrs = dict(raw_table.attrs)
    return table
