"""What an auditor sees on a release's materialization in the Dagster UI: dataset, input hash,
release id, a link to report.html, the gate table, row count and column schema."""

from pathlib import Path

import dagster as dg


def _cell(text: object) -> str:
    return str(text).replace("|", "/").replace("\n", " ")


def gate_table(results: list[dict]) -> dg.MetadataValue:
    """One row per gate: verdict, each metric against its threshold, and the reason in words — a
    table the UI shows inline (markdown would hide behind a "Show Markdown" link)."""
    def figures(r: dict) -> str:
        return ", ".join(
            f"{m['name']} {m['value']:.3g}" + (f" / {m['threshold']:.3g}" if m.get("threshold") is not None else "")
            for m in r.get("metrics", []) if isinstance(m.get("value"), (int, float)))

    return dg.MetadataValue.table(
        records=[dg.TableRecord({"gate": _cell(r.get("gate", "?")), "verdict": "pass" if r.get("passed") else "REFUSED",
                                 "metrics (value / threshold)": _cell(figures(r)), "reason": _cell(r.get("reason", ""))})
                 for r in results],
        schema=dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in
                                       ("gate", "verdict", "metrics (value / threshold)", "reason")]),
    )


def release_metadata(*, dataset: str, input_sha256: str | None, release_id: str, path: Path, gates: list[dict],
                     rows: int, columns: list[tuple[str, str]] | None = None) -> dict:
    """The release materialization's metadata (both arms); `columns` as (name, kind) pairs."""
    table = {"dagster/row_count": dg.MetadataValue.int(rows)}
    if columns:
        table["dagster/column_schema"] = dg.MetadataValue.table_schema(
            dg.TableSchema(columns=[dg.TableColumn(name, kind) for name, kind in columns]))
    return {
        "dataset": dataset,
        "input_sha256": input_sha256 or "",
        "release_id": release_id,
        "path": dg.MetadataValue.path(str(path)),
        "report": dg.MetadataValue.url((Path(path) / "report.html").resolve().as_uri()),
        "gates": gate_table(gates),
        **table,
    }
