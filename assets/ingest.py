"""raw_table -> validated_table: read the source, then type it and run the Great Expectations suite."""

import dagster as dg
import pandas as pd

from assets.refusal import final_on_bad_input
from resources import PipelineSettings
from synth_pipeline.data import load_dataset
from synth_pipeline.hashing import file_sha256
from synth_pipeline.preprocess import model_table
from synth_pipeline.schema import Schema
from synth_pipeline.validation import require_valid, validate_table

GROUP = "tabular"


@dg.asset(group_name=GROUP, kinds={"pandas"})
@final_on_bad_input
def raw_table(context: dg.AssetExecutionContext, settings: PipelineSettings) -> pd.DataFrame:
    """The source table as read (bundled name or CSV / Parquet / ARFF path), with its schema."""
    cfg = settings.run_config()
    loaded = load_dataset(
        cfg.data, target=cfg.target, drop=cfg.drop, id_columns=cfg.id_columns, column_kinds=cfg.column_kinds,
        on_identifiers=cfg.on_identifiers, sensitive=cfg.sensitive_columns,
    )
    raw = loaded.raw.copy()
    sha = file_sha256(loaded.source)
    raw.attrs = {
        "schema": loaded.schema.to_dict(),
        "input": {"path": str(loaded.source), "sha256": sha, "rows": len(raw), "columns": len(raw.columns)},
    }
    context.add_output_metadata(
        {"dataset": loaded.schema.dataset, "source": str(loaded.source), "input_sha256": sha, "rows": len(raw)}
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
