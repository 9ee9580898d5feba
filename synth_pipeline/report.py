"""A self-contained report.html (inline CSS, plots as inline PNGs; no external resource) for a
release (`render_report`) or a refusal record (`render_refusal`), rendered from the Jinja2 templates in
synth_pipeline/templates/.

Both render from the manifest / refusal document's own fields, so the page can never disagree with
it (and is rebuilt byte for byte from it). Plots come from `synth_pipeline.plots`, which only sees
aggregates (`manifest["plots_data"]`, under the small-cell rule) and the metric dicts, never real rows.
This module only turns those fields into what a reader needs first: a verdict in words, the columns
not released and why, what ran (generator, code, packages), and each report-only risk with what it
means and whether its interval says anything at all.
"""

import html
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from synth_pipeline import plots

CSS = """
body{font-family:system-ui,sans-serif;max-width:1280px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:0.5em 0 1.5em} td,th{border:1px solid #ccc;padding:4px 8px;font-size:14px;
vertical-align:top} th{background:#f4f4f4}
tr.pass td.verdict{color:#176117;font-weight:600} tr.fail td{background:#fdecea} tr.fail td.verdict{color:#a11;
font-weight:600} code{background:#f4f4f4} .refused{color:#a11} .published{color:#176117}
.plots{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start} figure{margin:0;width:min-content}
figcaption{font-size:12px;color:#555} img.plot{display:block;border:1px solid #eee}
.note{font-size:13px;color:#555} #in-words{font-size:17px;max-width:60em}
td.gate-pass{color:#176117;font-weight:600} td.gate-fail{color:#a11;background:#fdecea;font-weight:600}
"""

_ORDER = {"fidelity": 0, "utility": 1, "privacy": 2}  # fixed, whatever the manifest's key order
GATE_NAMES = {"dcr_gate": "distance to closest record", "linkability_gate": "linkability",
              "tstr_gate": "train-synthetic-test-real utility", "inference_gate": "attribute inference",
              "fidelity_gate": "fidelity against the real-sample floor",
              "copy_filter": "rare-row copy filter", "generator": "generator", "release": "release check",
              "mri_memorisation_gate": "memorisation", "mri_fidelity_gate": "fidelity"}
# What each report-only risk measures, in one line (docs/metrics.md has the full glossary).
RISKS = {
    "singling_out": "share of singling-out queries (true of exactly one training patient) that succeed "
                    "beyond the control attack; 0 is ideal",
    "c2st": "AUROC of a classifier telling real rows from synthetic ones: 0.5 = indistinguishable, "
                  "1 = easy to tell apart (a fidelity figure, not a privacy one)",
    "nndr": "nearest / second-nearest training distance of a synthetic row; near 0 means rows sit on "
            "one training record rather than between several",
}
NOISE_WIDTH = 0.5  # an interval wider than this over a [0, 1] quantity says nothing either way


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


@lru_cache(maxsize=1)
def _templates():
    from jinja2 import Environment, PackageLoader
    from markupsafe import Markup

    env = Environment(loader=PackageLoader("synth_pipeline", "templates"), autoescape=True,
                      keep_trailing_newline=True)
    env.filters["fmt"] = lambda v: Markup(fmt(v))
    env.filters["verdict"] = _verdict
    return env


def render(template: str, **context: Any) -> str:
    return _templates().get_template(template).render(css=CSS, **context)


def with_sections(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document with its nested sections present (empty when absent), so a page renders "—"
    rather than failing on an older or partial manifest."""
    return {**doc, **{k: doc.get(k) or {} for k in ("input", "dagster", "config", "volume")}}


def figures(fragments: Mapping[str, str]) -> list[tuple[str, str]]:
    """(<img> fragment, caption) pairs; the caption repeats the alt text (the numbers, for readers
    without images), already HTML-escaped as the attribute is."""
    return [(f, f.split('alt="', 1)[1].split('"', 1)[0] if 'alt="' in f else "") for f in fragments.values()]


def dropped_columns(schema: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """Each input column that is not in the release, with the reason the schema recorded."""
    if not schema:
        return []
    notes = schema.get("notes") or {}
    out = []
    for col in schema.get("identifiers") or ():
        why = notes.get(f"identifier:{col}")
        out.append({"column": col, "why": f"identifier — {why}" if why else "identifier (declared in id_columns)"})
    for col in schema.get("drop") or ():
        why = notes.get(f"dropped:{col}")
        out.append({"column": col, "why": why or "dropped by configuration (drop): e.g. a leaky outcome or follow-up "
                                                  "column"})
    for key, why in sorted(notes.items()):
        if key.startswith("pooled:"):
            out.append({"column": key.split(":", 1)[1], "why": f"released, rare categories pooled — {why}"})
    return out


def risk_rows(reports: Mapping[str, Any], gates: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The report-only risks: value, CI, what the metric means and how to read this value — noise
    when the interval spans most of [0, 1]."""
    gated = {m.get("name") for g in gates for m in g.get("metrics") or []}
    rows = []
    for rep in reports.values():
        for m in rep.get("metrics") or []:
            name = str(m.get("name"))
            key = next((k for k in RISKS if name.startswith(k)), None)
            if key is None or name in gated or not isinstance(m.get("value"), (int, float)):
                continue
            ci, value = m.get("ci"), float(m["value"])
            if ci and ci[1] - ci[0] > NOISE_WIDTH:
                reading = "noise: the interval spans most of [0, 1], so this value says nothing either way"
            elif key == "c2st":
                reading = ("easy to tell apart" if value >= 0.9 else "hard to tell apart" if value <= 0.6
                           else "partly distinguishable")
            elif key == "singling_out":
                reading = "low" if (ci[1] if ci else value) <= 0.1 else "elevated: some training patients can be singled out"
            else:
                reading = "rows sit on single training records" if value < 0.5 else "rows lie between training records"
            rows.append({"name": name, "value": value, "ci": ci, "meaning": RISKS[key], "reading": reading})
    return rows


def _provenance(config: Mapping[str, Any], code: Mapping[str, Any] | None, packages: Mapping[str, Any] | None,
                generator_key: str = "generator") -> dict[str, Any]:
    return {"generator": config.get(generator_key), "seed": config.get("seed"),
            "generator_params": config.get("generator_params") or config.get("model_params") or {},
            "code": dict(code or {}), "packages": sorted((packages or {}).items())}


def _gate_phrase(gates: Sequence[Mapping[str, Any]]) -> str:
    return ", ".join(GATE_NAMES.get(str(g.get("gate")), str(g.get("gate"))) for g in gates)


def release_summary(m: Mapping[str, Any]) -> str:
    inp, cfg = m.get("input") or {}, m.get("config") or {}
    gates = m.get("gates") or []
    dropped = dropped_columns(m.get("schema"))
    source = inp.get("path") or inp.get("sql") or inp.get("data")
    text = (f"This release holds {m.get('n_rows')} synthetic rows of {m.get('dataset')}, generated by "
            f"{cfg.get('generator')} (seed {cfg.get('seed')}) from {source}: {inp.get('train_rows')} patients trained "
            f"the generator and {inp.get('holdout_rows')} others were held out to judge it. It was published because "
            f"all {len(gates)} gates passed for this very candidate ({_gate_phrase(gates)}).")
    if dropped:
        text += (f" {len(dropped)} input column{'s were' if len(dropped) > 1 else ' was'} not released as is: "
                 + ", ".join(d["column"] for d in dropped) + " (see below).")
    if m.get("overrides"):
        text += " Some gate settings were loosened on purpose (below)."
    return text


def render_report(manifest: Mapping[str, Any]) -> str:
    """The release page: the verdict in words, gate table, columns not released, provenance,
    report-only risks, plots (when `plots_data` or metric reports allow), what changed since the
    previous release, and every metric of the fidelity, utility and privacy reports."""
    reports = manifest.get("reports", {}) or {}
    figs = plots.all_plots(manifest.get("plots_data"), reports)
    dist = {k: v for k, v in figs.items() if k.startswith("plot-dist-")}
    view = {
        "summary": release_summary(manifest),
        "dropped": dropped_columns(manifest.get("schema")),
        "risks": risk_rows(reports, manifest.get("gates", [])),
        "plots_top": figures({k: v for k, v in figs.items() if k not in dist}),
        "plots_dist": figures(dist),
        "selection_plot": plots.selection_plot(manifest.get("selection")),
        "min_cell": (manifest.get("plots_data") or {}).get("columns", {}).get("min_cell_count", plots.MIN_CELL_COUNT),
        "reports": sorted(reports.items(), key=lambda kv: (_ORDER.get(kv[0], len(_ORDER)), kv[0])),
        **_provenance(manifest.get("config", {}), manifest.get("code_version"), manifest.get("packages")),
    }
    return render("report.html.j2", title=f"synth-pipeline release {fmt(manifest.get('release_id'))}",
                  m=with_sections(manifest), view=view)


def refusal_summary(doc: Mapping[str, Any], refusing: Sequence[Mapping[str, Any]], generator: Any) -> str:
    names = _gate_phrase(refusing) or "a check"
    first = refusing[0] if refusing else {}
    text = (f"Nothing was published: the {names} refused this candidate of {doc.get('dataset')} made by "
            f"{generator}. {first.get('reason', '')}")
    if first.get("remedy"):
        text += f" What to try next: {first['remedy']}"
    return text


def render_refusal(doc: Mapping[str, Any]) -> str:
    """The refusal page for a `refusals/<run_id>.json` record: the verdict in words with what to try
    next, every gate the run evaluated (passing ones too) with its metrics, and the DCR / TSTR plots
    its metrics allow. Nothing was published; no synthetic rows or real rows are shown."""
    entries = list(doc.get("entries", []))
    refusing = [e for e in entries if not e.get("passed")]
    results = dict(doc.get("gates") or {})
    for e in entries:  # a refusing entry carries the remedy; steps that are no gate (generator, release) only live here
        results[e.get("gate")] = {**results.get(e.get("gate"), {}), **e}
    gates = list(results.values())
    metrics = [m for g in gates for m in (g.get("metrics") or [])]
    cfg = doc.get("config") or next((e.get("config") for e in entries if e.get("config")), {}) or {}
    generator = doc.get("generator") or cfg.get("generator") or cfg.get("model")
    view = {
        "summary": refusal_summary(doc, refusing, generator),
        "refusing": refusing,
        "failing": ", ".join(map(str, doc.get("failing_gates") or sorted({str(e.get("gate")) for e in refusing}))),
        "gates": gates,
        "shas": ", ".join(sorted({e.get("candidate_sha256") for e in entries if e.get("candidate_sha256")})),
        "plots_top": figures({k: f for k, f in (("dcr", plots.dcr_plot(metrics)), ("tstr", plots.tstr_plot(metrics)))
                              if f}),
        **_provenance(cfg, doc.get("code_version"), doc.get("packages"),
                      "generator" if cfg.get("generator") else "model"),
    }
    return render("refusal.html.j2", title=f"synth-pipeline refusal {fmt(doc.get('run_id'))}", d=doc, view=view)
