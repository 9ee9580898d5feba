"""The readable report.html of an image release: verdict, gate table, every image metric, and the
montage of released synthetic slices (inline PNG; the page has no external resource)."""

from collections.abc import Mapping
from typing import Any

from synth_pipeline.imaging.publish import data_uri
from synth_pipeline.report import fmt, gate_table, metric_rows, overrides_note, page


def render_mri_report(manifest: Mapping[str, Any], montage_png: bytes) -> str:
    cfg = manifest.get("config", {})
    inp = manifest.get("input", {})
    skipped = inp.get("skipped") or []
    skipped_html = ("<p>Skipped input files:</p><ul id='skipped'>" + "".join(
        f"<li><code>{fmt(s.get('file'))}</code>: {fmt(s.get('reason'))}</li>" for s in skipped) + "</ul>"
                    if skipped else "<p>No input file was skipped.</p>")
    consistency = manifest.get("volume", {}) or {}
    body = f"""<h1>Synthetic MRI release: {fmt(manifest.get('dataset'))}</h1>
<p><b>Verdict: <span class='published'>{fmt(manifest.get('verdict'))}</span></b>
· release <code>{fmt(manifest.get('release_id'))}</code> · model <code>{fmt(cfg.get('model'))}</code>
· budget {fmt(cfg.get('budget'))} · seed {fmt(cfg.get('seed'))}
· {fmt(manifest.get('n_slices'))} synthetic {fmt(cfg.get('size'))}×{fmt(cfg.get('size'))} slices</p>
{overrides_note(manifest.get('overrides'))}
<p>Input <code>{fmt(inp.get('data'))}</code>: {fmt(len(inp.get('sources') or []))} volumes
({fmt(inp.get('train_subjects'))} train subjects, {fmt(inp.get('holdout_subjects'))} holdout subjects;
{fmt(inp.get('train_slices'))} / {fmt(inp.get('holdout_slices'))} slices). Dagster run
<code>{fmt(manifest.get('dagster', {}).get('run_id'))}</code>.</p>
{skipped_html}
<h2>Gates</h2>
{gate_table(manifest.get('gates', []))}
<h2>Synthetic slices (montage, ordered by position)</h2>
<figure><img id="montage" class="plot" alt="synthetic slices ordered by slice position" src="{data_uri(montage_png)}">
<figcaption>Released synthetic slices, lowest position top left. No real slice is shown.</figcaption></figure>
<h2>Image metrics</h2>
{metric_rows(manifest.get('metrics', []))}
<p class='note'>Assembled volume: neighbouring-slice consistency {fmt(consistency.get('neighbour_consistency'))}
(real volumes: {fmt(consistency.get('real_neighbour_consistency'))}).</p>
<p>Every file in this folder is listed with its sha256 in <code>manifest.json</code>;
<code>synth-pipeline audit &lt;folder&gt;</code> re-verifies them.</p>"""
    return page(f"synth-pipeline MRI release {fmt(manifest.get('release_id'))}", body)
