"""A self-contained report.html (inline CSS, plots as inline PNGs; no external resource) for a
release (`render_report`) or a refusal record (`render_refusal`).

Both render from the manifest / refusal document's own fields, so the page can never disagree with
it. Plots come from `synth_pipeline.plots`, which only sees aggregates (`manifest["plots_data"]`,
under the small-cell rule) and the metric dicts, never real rows.
"""

import html
from collections.abc import Mapping, Sequence
from typing import Any

from synth_pipeline import plots

_CSS = """
body{font-family:system-ui,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em} td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px;
vertical-align:top} th{background:#f4f4f4}
tr.pass td.verdict{color:#176117;font-weight:600} tr.fail td{background:#fdecea} tr.fail td.verdict{color:#a11;
font-weight:600} code{background:#f4f4f4} .refused{color:#a11} .published{color:#176117}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start} figure{margin:0;width:min-content}
figcaption{font-size:12px;color:#555} img.plot{display:block;border:1px solid #eee}
.note{font-size:13px;color:#555}
"""


_ORDER = {"fidelity": 0, "utility": 1, "privacy": 2}  # fixed, whatever the manifest's key order


def fmt(v: Any) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, (int, float)) for x in v):
        return f"[{v[0]:.4g}, {v[1]:.4g}]"
    return html.escape(str(v))


def _verdict(passed: Any) -> str:
    return {True: "pass", False: "fail"}.get(passed, "")


def metric_rows(metrics: Sequence[Mapping[str, Any]]) -> str:
    rows = []
    for m in metrics:
        status = _verdict(m.get("passed"))
        note = m.get("error") or m.get("compared") or ""
        rows.append(
            f"<tr class='{status}'><td>{fmt(m['name'])}</td><td>{fmt(m.get('value'))}</td>"
            f"<td>{fmt(m.get('ci'))}</td><td>{fmt(m.get('threshold'))}</td><td class='verdict'>{status}</td>"
            f"<td>{fmt(note)}</td></tr>"
        )
    return (
        "<table><tr><th>metric</th><th>value</th><th>95% CI</th><th>threshold</th><th>verdict</th>"
        "<th>compared / note</th></tr>" + "".join(rows) + "</table>"
    )


def gate_table(gates: Sequence[Mapping[str, Any]], table_id: str = "gate-table") -> str:
    """One row per gate metric: value, CI, threshold and the metric's verdict, under the gate's own
    verdict and one-sentence reason."""
    rows = []
    for g in gates:
        ms = list(g.get("metrics") or []) or [{}]
        gate_verdict = "pass" if g.get("passed") else "REFUSE"
        head = (f"<td rowspan='{len(ms)}'>{fmt(g.get('gate'))}</td>"
                f"<td rowspan='{len(ms)}' class='verdict'>{gate_verdict}</td>")
        for i, m in enumerate(ms):
            status = _verdict(m.get("passed"))
            cells = (f"<td>{fmt(m.get('name'))}</td><td>{fmt(m.get('value'))}</td><td>{fmt(m.get('ci'))}</td>"
                     f"<td>{fmt(m.get('threshold'))}</td><td class='verdict'>{status}</td>")
            reason = f"<td rowspan='{len(ms)}'>{fmt(g.get('reason'))}</td>" if i == 0 else ""
            cls = _verdict(g.get("passed")) if i == 0 else status
            rows.append(f"<tr class='{cls}'>{head if i == 0 else ''}{cells}{reason}</tr>")
    return (f"<table id='{table_id}'><tr><th>gate</th><th>gate verdict</th><th>metric</th><th>value</th>"
            "<th>95% CI</th><th>threshold</th><th>metric verdict</th><th>reason</th></tr>"
            + "".join(rows) + "</table>")


def figure(fragment: str) -> str:
    """Wrap an <img> in a <figure> whose caption repeats its alt text (the numbers, for readers
    without images)."""
    alt = fragment.split('alt="', 1)[1].split('"', 1)[0] if 'alt="' in fragment else ""
    return f"<figure>{fragment}<figcaption>{alt}</figcaption></figure>"


def _plots_section(plots_data: Mapping[str, Any] | None, reports: Mapping[str, Any]) -> str:
    figs = plots.all_plots(plots_data, reports)
    if not figs:
        return ""
    dist = {k: v for k, v in figs.items() if k.startswith("plot-dist-")}
    top = {k: v for k, v in figs.items() if k not in dist}
    out = ["<h2 id='plots'>Plots</h2>", "<div class='plots'>", *map(figure, top.values()), "</div>"]
    if dist:
        rule = (plots_data or {}).get("columns", {}).get("min_cell_count", plots.MIN_CELL_COUNT)
        out += [
            "<h3>Per-column distributions: real (train) vs synthetic</h3>",
            f"<p class='note'>Small-cell rule: no bar or bin shows fewer than {rule} real rows. Smaller real "
            "bins are merged into a neighbour, rare categories pooled as “other” (zeroed and marked "
            "&lt;5 if still too small); bin edges are round numbers inside the real 1st–99th percentiles, "
            "with hatched open-ended tails. Real extremes are never printed.</p>",
            "<div class='plots'>", *map(figure, dist.values()), "</div>",
        ]
    return "\n".join(out)


def overrides_note(overrides: Sequence[Mapping[str, Any]] | None) -> str:
    """First-screen warning: thresholds set looser than their defaults (a deliberate override)."""
    if not overrides:
        return ""
    items = "; ".join(f"<code>{fmt(o.get('threshold'))}</code> = {fmt(o.get('value'))} (default "
                      f"{fmt(o.get('default'))}, {fmt(o.get('note'))})" for o in overrides)
    return (f"<p id='overrides' class='refused'><b>Deliberate override{'s' if len(overrides) > 1 else ''} of the "
            f"default gate:</b> {items}. Recorded in <code>manifest.json</code> under <code>overrides</code>.</p>")


def page(title: str, body: str) -> str:
    return (f"<!doctype html>\n<html lang='en'><head><meta charset='utf-8'><title>{title}</title>\n"
            f"<style>{_CSS}</style></head><body>\n{body}\n</body></html>\n")


def render_report(manifest: Mapping[str, Any]) -> str:
    """The release page: header, gate table, plots (when `plots_data` or metric reports allow), and
    every metric of the fidelity, utility and privacy reports."""
    gates = manifest.get("gates", [])
    reports = manifest.get("reports", {}) or {}
    sections = "".join(
        f"<h2>{fmt(name.capitalize())}</h2>" + metric_rows(rep.get("metrics", []))
        for name, rep in sorted(reports.items(), key=lambda kv: (_ORDER.get(kv[0], len(_ORDER)), kv[0]))
    )
    cfg = manifest.get("config", {})
    inp = manifest.get("input", {})
    verdict = str(manifest.get("verdict", ""))
    body = f"""<h1>Synthetic release: {fmt(manifest.get('dataset'))}</h1>
<p><b>Verdict: <span class='{'published' if verdict == 'published' else 'refused'}'>{fmt(verdict)}</span></b>
· release <code>{fmt(manifest.get('release_id'))}</code>
· generator <code>{fmt(cfg.get('generator'))}</code> · seed {fmt(cfg.get('seed'))}
· {fmt(manifest.get('n_rows'))} synthetic rows</p>
{overrides_note(manifest.get('overrides'))}
<p>Input <code>{fmt(inp.get('path') or inp.get('sql'))}</code> sha256 <code>{fmt(inp.get('sha256'))}</code>;
train {fmt(inp.get('train_rows'))} rows, holdout {fmt(inp.get('holdout_rows'))} rows.
Dagster run <code>{fmt(manifest.get('dagster', {}).get('run_id'))}</code>.</p>
<h2>Gates</h2>
{gate_table(gates)}
{_plots_section(manifest.get('plots_data'), reports)}
{since_previous_section(manifest.get('since_previous'))}
{sections}
<p>Every file in this folder is listed with its sha256 in <code>manifest.json</code>;
<code>synth-pipeline audit &lt;folder&gt;</code> re-verifies them. The plotted numbers are in
<code>manifest.json</code> under <code>plots_data</code> and <code>reports</code>.</p>"""
    return page(f"synth-pipeline release {fmt(manifest.get('release_id'))}", body)


def render_refusal(doc: Mapping[str, Any]) -> str:
    """The refusal page for a `refusals/<run_id>.json` record: which gates refused and why, each
    entry's metrics (value, CI, threshold, verdict), and the DCR / TSTR plots its metrics allow.
    Nothing was published; no synthetic rows or real rows are shown."""
    entries = list(doc.get("entries", []))
    failing = list(doc.get("failing_gates") or sorted({e.get("gate") for e in entries if not e.get("passed")}))
    metrics = [m for e in entries for m in (e.get("metrics") or [])]
    figs = [f for f in (plots.dcr_plot(metrics), plots.tstr_plot(metrics)) if f]
    plot_html = ("<h2 id='plots'>Plots</h2><div class='plots'>" + "".join(map(figure, figs)) + "</div>") if figs else ""
    cfg = next((e.get("config") for e in entries if e.get("config")), {}) or {}
    shas = sorted({e.get("candidate_sha256") for e in entries if e.get("candidate_sha256")})
    reasons = "".join(f"<li><b>{fmt(e.get('gate'))}</b>: {fmt(e.get('reason'))}</li>"
                      for e in entries if not e.get("passed"))
    body = f"""<h1>Synthetic release refused: {fmt(doc.get('dataset'))}</h1>
<p><b>Verdict: <span class='refused'>{fmt(doc.get('verdict', 'refused'))}</span></b> — nothing was published.
Dagster run <code>{fmt(doc.get('run_id'))}</code>
· generator <code>{fmt(cfg.get('generator'))}</code> · seed {fmt(cfg.get('seed'))}
· candidate sha256 <code>{fmt(', '.join(shas) or None)}</code></p>
<p>Failing gates: <b>{fmt(', '.join(map(str, failing)) or None)}</b></p>
<ul id='refusal-reasons'>{reasons}</ul>
<h2>Gates</h2>
{gate_table(entries)}
{plot_html}
<p class='note'>Recorded in <code>refusals/{fmt(doc.get('run_id'))}.json</code>, last updated
{fmt(doc.get('updated_at'))}.</p>"""
    return page(f"synth-pipeline refusal {fmt(doc.get('run_id'))}", body)


def since_previous_section(d: Mapping[str, Any] | None) -> str:
    """"What changed since the previous release" (synth_pipeline.drift): flagged input drift, schema,
    rows, gate verdicts and every gate metric, old -> new. Empty for a dataset's first release."""
    if not d:
        return ""

    def changes(items: Sequence[Mapping[str, Any]], cls: str) -> str:
        return "".join(f"<tr class='{'fail' if it['previous'] != it['current'] and cls else ''}'><td>{fmt(it['what'])}</td>"
                       f"<td>{fmt(it['previous'])}</td><td>{fmt(it['current'])}</td></tr>" for it in items)

    drift = "".join(
        f"<tr class='{'fail' if c['flagged'] else ''}'><td>{fmt(c['column'])}</td><td>{fmt(c['test'])}</td>"
        f"<td>{fmt(c['statistic'])}</td><td>{fmt(c['p_value'])}</td><td>{fmt(c['effect'])}</td>"
        f"<td class='verdict'>{'DRIFT' if c['flagged'] else ''}</td><td>{fmt(c['note'] or None)}</td></tr>"
        for c in d.get("drift", []))
    schema = [f"added {fmt(c)}" for c in d.get("columns_added", [])] + [f"removed {fmt(c)}" for c in d.get("columns_removed", [])]
    schema += [f"{fmt(k['what'])}: {fmt(k['previous'])} → {fmt(k['current'])}" for k in d.get("kinds_changed", [])]
    head = "<tr><th>what</th><th>previous</th><th>this release</th></tr>"
    return f"""<h2 id='since-previous'>What changed since the previous release</h2>
<p>Previous release <code>{fmt(d.get('previous_release_id'))}</code> ({fmt(d.get('previous_created_at'))});
input file {'identical' if d.get('same_input') else 'changed'}. Drift flagged in:
<b>{fmt(', '.join(d.get('flagged', [])) or 'no column')}</b>. Schema: {'; '.join(schema) or 'unchanged'}.</p>
<p class='note'>Input drift per column, this release's real rows against the previous release's recorded
profile (bins and categories with ≥ 5 rows): Kolmogorov–Smirnov D for numeric columns, chi-square with
Cramér's V for categorical ones; flagged when p &lt; {fmt(d.get('p_max'))} and the effect size is at least
{fmt(d.get('effect_min'))}.</p>
<table id='drift-table'><tr><th>column</th><th>test</th><th>statistic</th><th>p-value</th><th>effect size</th>
<th>flag</th><th>note</th></tr>{drift}</table>
<h3>Rows and gates</h3><table id='since-rows'>{head}{changes(d.get('rows', []), '')}{changes(d.get('gates', []), 'x')}</table>
<h3>Gate metrics</h3><table id='since-metrics'>{head}{changes(d.get('metrics', []), '')}</table>"""
