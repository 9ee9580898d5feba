"""A short, self-contained report.html: what was released, from what, and why it passed or not."""

import html
from collections.abc import Mapping, Sequence
from typing import Any


def _fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"[{v[0]:.4g}, {v[1]:.4g}]"
    return html.escape(str(v))


def _metric_rows(metrics: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for m in metrics:
        status = {True: "pass", False: "fail", None: ""}[m.get("passed")]
        note = m.get("error") or m.get("compared") or ""
        rows.append(
            f"<tr class='{status}'><td>{_fmt(m['name'])}</td><td>{_fmt(m.get('value'))}</td>"
            f"<td>{_fmt(m.get('ci'))}</td><td>{_fmt(m.get('threshold'))}</td><td>{status}</td>"
            f"<td>{_fmt(note)}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>95% CI</th><th>threshold</th><th>verdict</th>"
        "<th>compared / note</th></tr>" + "".join(rows) + "</table>"
    )


def render_report(manifest: Mapping[str, Any]) -> str:
    """Render from the manifest's own fields, so the report can never disagree with it."""
    gates = manifest.get("gates", [])
    gate_rows = "".join(
        f"<tr class='{'pass' if g['passed'] else 'fail'}'><td>{_fmt(g['gate'])}</td>"
        f"<td>{'pass' if g['passed'] else 'REFUSE'}</td><td>{_fmt(g['reason'])}</td></tr>"
        for g in gates
    )
    sections = "".join(
        f"<h2>{_fmt(name.capitalize())}</h2>" + _metric_rows(rep.get("metrics", []))
        for name, rep in manifest.get("reports", {}).items()
    )
    cfg = manifest.get("config", {})
    inp = manifest.get("input", {})
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>synth-pipeline release {_fmt(manifest.get('release_id'))}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}}
table{{border-collapse:collapse;margin:0.5em 0 1.5em}} td,th{{border:1px solid #ccc;padding:4px 8px;font-size:14px}}
tr.pass td:nth-child(2){{color:#176117}} tr.fail td{{background:#fdecea}} code{{background:#f4f4f4}}
</style></head><body>
<h1>Synthetic release: {_fmt(manifest.get('dataset'))}</h1>
<p><b>Verdict: {_fmt(manifest.get('verdict'))}</b> · release <code>{_fmt(manifest.get('release_id'))}</code>
· generator <code>{_fmt(cfg.get('generator'))}</code> · seed {_fmt(cfg.get('seed'))}
· {_fmt(manifest.get('n_rows'))} synthetic rows</p>
<p>Input <code>{_fmt(inp.get('path'))}</code> sha256 <code>{_fmt(inp.get('sha256'))}</code>;
train {_fmt(inp.get('train_rows'))} rows, holdout {_fmt(inp.get('holdout_rows'))} rows.
Dagster run <code>{_fmt(manifest.get('dagster', {}).get('run_id'))}</code>.</p>
<h2>Gates</h2>
<table><tr><th>gate</th><th>verdict</th><th>reason</th></tr>{gate_rows}</table>
{sections}
<p>Every file in this folder is listed with its sha256 in <code>manifest.json</code>;
<code>synth-pipeline audit &lt;folder&gt;</code> re-verifies them.</p>
</body></html>
"""
