"""The report's plots: aggregates computed from the tables, and PNG <img> fragments drawn from them.

Two layers, kept apart on purpose:

* `column_distributions` and `correlation_difference` read the real and synthetic tables and return
  small JSON-able aggregates (bin counts, category frequencies, correlation matrices). These go into
  `manifest.json` as `plots_data`, so every plotted number is also in the manifest.
* The `*_plot` functions take only those aggregates (or metric dicts already in the manifest) and
  return an HTML `<img>` fragment with a stable `id`, alt text and an inline base64 PNG. They never see
  a real row.

Small-cell disclosure rule (`MIN_CELL_COUNT` = 5): no aggregate published here lets a reader single
out fewer than five real rows. A histogram bin whose real count is 1–4 is merged into its neighbour
until every real bin holds 0 or >= 5 rows; categories with 1–4 real rows are pooled into one
"other (<5 each)" bar, and that pool is zeroed (marked suppressed) if it still holds fewer than five.
Values outside the schema's categories are never named. Numeric bin edges are "nice" round numbers
between the real 1st and 99th percentiles with open-ended tail bins, so neither the edges nor the
counts reveal an individual outlier (the real minimum or maximum is never printed).

Deterministic output: matplotlib Agg canvas with fixed rcParams (bundled DejaVu Sans font), fixed
figure sizes and dpi, no PNG metadata (`Software` removed), `svg.hashsalt` fixed; the same aggregates
give byte-identical PNGs with the same matplotlib version.
"""

from __future__ import annotations

import base64
import contextlib
import html
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator

from synth_pipeline.schema import Schema

MIN_CELL_COUNT = 5
MAX_BINS = 20
MAX_CATEGORIES = 20
DPI = 100
REAL_COLOUR = "#1f77b4"
SYN_COLOUR = "#ff7f0e"
OTHER_LABEL = "other (<5 each)"

_RC = {
    "font.family": "DejaVu Sans",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "svg.hashsalt": "synth-pipeline",
    "svg.fonttype": "path",
    "path.simplify": True,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "image.interpolation": "nearest",
}


# ---------------------------------------------------------------------------------------------
# Aggregates (the only functions that read tables)
# ---------------------------------------------------------------------------------------------


def _clean(v: Any) -> Any:
    """JSON-safe scalar: NaN/inf -> None, numpy -> python."""
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


def _nice_edges(real: np.ndarray, integer: bool, min_cell: int = MIN_CELL_COUNT) -> np.ndarray:
    """Round-number edges spanning the real 1st-99th percentiles, and never beyond the min_cell-th
    smallest / largest value (on a small table the percentiles would sit near the raw extremes)."""
    lo, hi = (float(x) for x in np.percentile(real, [1, 99]))
    srt = np.sort(real)
    k = min(min_cell, len(srt)) - 1
    lo, hi = max(lo, float(srt[k])), min(hi, float(srt[-k - 1]))
    lo, hi = min(lo, hi), max(lo, hi)
    if integer and hi - lo + 1 <= MAX_BINS:
        return np.arange(math.floor(lo), math.floor(hi) + 2, dtype=float) - 0.5  # one bin per integer
    if hi <= lo:
        step = 10.0 ** math.floor(math.log10(abs(lo))) if lo else 1.0
        return np.array([lo - step, lo + step]) if not integer else np.array([lo - 0.5, lo + 0.5])
    edges = MaxNLocator(nbins=MAX_BINS, steps=[1, 2, 2.5, 5, 10], integer=integer).tick_values(lo, hi)
    edges = np.unique(np.round(edges, 10))
    # tick_values may overshoot by one step each side; keep only edges that bound some of [lo, hi]
    first = max(0, int(np.searchsorted(edges, lo, side="right")) - 1)
    last = min(len(edges), int(np.searchsorted(edges, hi, side="left")) + 1)
    edges = edges[first:last] if last - first >= 2 else edges
    if len(edges) >= 2 and edges[-1] <= hi:  # bins are [lo, hi): the 99th percentile must fall inside
        edges = np.append(edges, edges[-1] + (edges[-1] - edges[-2]))
    return edges


def _merge_small(bins: list[dict], min_cell: int = MIN_CELL_COUNT) -> list[dict]:
    """Merge any bin whose real count is 1..MIN_CELL_COUNT-1 into its smaller neighbour, until none is
    left; if all real rows fit in one bin of fewer than MIN_CELL_COUNT, its real count is zeroed."""
    bins = [dict(b) for b in bins]
    while True:
        small = [i for i, b in enumerate(bins) if 0 < b["real"] < min_cell]
        if not small:
            return bins
        if len(bins) == 1:
            bins[0].update(real=0, suppressed=True)
            return bins
        i = small[0]
        nbrs = [j for j in (i - 1, i + 1) if 0 <= j < len(bins)]
        j = min(nbrs, key=lambda k: (bins[k]["real"], k))
        a, b = sorted((i, j))
        bins[a : b + 1] = [{"lo": bins[a]["lo"], "hi": bins[b]["hi"], "real": bins[a]["real"] + bins[b]["real"],
                            "synthetic": bins[a]["synthetic"] + bins[b]["synthetic"],
                            "suppressed": bins[a].get("suppressed", False) or bins[b].get("suppressed", False)}]


def _suppress(n: int, min_cell: int = MIN_CELL_COUNT) -> int | None:
    """A real count below the small-cell threshold is not published (None), except 0."""
    return n if n == 0 or n >= min_cell else None


def _numeric_column(name: str, kind: str, real: pd.Series, syn: pd.Series, min_cell: int = MIN_CELL_COUNT) -> dict:
    r = pd.to_numeric(real, errors="coerce").to_numpy(dtype=float)
    s = pd.to_numeric(syn, errors="coerce").to_numpy(dtype=float)
    r_ok, s_ok = r[np.isfinite(r)], s[np.isfinite(s)]
    out: dict[str, Any] = {
        "name": name, "kind": kind, "n_real": int(len(r)), "n_synthetic": int(len(s)),
        "missing_real": _suppress(int(len(r) - len(r_ok)), min_cell), "missing_synthetic": int(len(s) - len(s_ok)),
    }
    if len(r_ok) < min_cell:
        return {**out, "bins": [], "suppressed": True}
    edges = _nice_edges(r_ok, integer=kind == "integer", min_cell=min_cell)
    idx_r = np.searchsorted(edges, r_ok, side="right")  # 0: below edges[0]; len(edges): >= edges[-1]
    idx_s = np.searchsorted(edges, s_ok, side="right")
    n_bins = len(edges) + 1
    cr = np.bincount(idx_r, minlength=n_bins)
    cs = np.bincount(idx_s, minlength=n_bins)
    bounds = [None, *edges.tolist(), None]
    bins = [{"lo": _clean(bounds[i]), "hi": _clean(bounds[i + 1]), "real": int(cr[i]), "synthetic": int(cs[i])}
            for i in range(n_bins)]
    # drop empty open-ended tails (nothing outside the nice range)
    while len(bins) > 1 and bins[0]["lo"] is None and bins[0]["real"] == 0 and bins[0]["synthetic"] == 0:
        bins.pop(0)
    while len(bins) > 1 and bins[-1]["hi"] is None and bins[-1]["real"] == 0 and bins[-1]["synthetic"] == 0:
        bins.pop()
    bins = _merge_small(bins, min_cell)
    for b in bins:
        b.setdefault("suppressed", False)
    return {**out, "bins": bins}


def _categorical_column(name: str, categories: Sequence[str] | None, real: pd.Series, syn: pd.Series,
                        min_cell: int = MIN_CELL_COUNT) -> dict:
    r = real.astype(object).where(real.notna(), None)
    s = syn.astype(object).where(syn.notna(), None)
    r_counts = r.dropna().astype(str).value_counts()
    s_counts = s.dropna().astype(str).value_counts()
    known = list(categories) if categories else []
    if not known:  # no public category list: name only categories with enough real rows
        known = sorted(c for c, n in r_counts.items() if n >= min_cell)
    # most frequent first when there are too many to draw
    if len(known) > MAX_CATEGORIES:
        known = sorted(known, key=lambda c: (-int(r_counts.get(c, 0)), c))[:MAX_CATEGORIES]
    rows, other_r, other_s = [], 0, 0
    for c in known:
        nr, ns = int(r_counts.get(c, 0)), int(s_counts.get(c, 0))
        if 0 < nr < min_cell:
            other_r, other_s = other_r + nr, other_s + ns
        else:
            rows.append({"category": str(c), "real": nr, "synthetic": ns, "suppressed": False})
    other_r += int(r_counts[~r_counts.index.isin(known)].sum())
    other_s += int(s_counts[~s_counts.index.isin(known)].sum())
    if other_r or other_s:
        rows.append({"category": OTHER_LABEL, "real": other_r if other_r >= min_cell else 0,
                     "synthetic": other_s, "suppressed": 0 < other_r < min_cell})
    return {
        "name": name, "kind": "categorical", "n_real": int(len(r)), "n_synthetic": int(len(s)),
        "missing_real": _suppress(int(r.isna().sum()), min_cell), "missing_synthetic": int(s.isna().sum()),
        "categories": rows,
    }


def column_distributions(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema,
                         min_cell: int = MIN_CELL_COUNT) -> dict:
    """Per-column real vs synthetic aggregates, in schema order, under the small-cell rule (module doc).

    Numeric/integer columns: `bins` [{lo, hi, real, synthetic, suppressed}] on shared edges (lo/hi None
    for the open-ended tails). Categorical columns: `categories` [{category, real, synthetic,
    suppressed}]. Counts are row counts; `missing_*` are missing-value counts (None when suppressed).
    `min_cell`: the run's small-cell k (RunConfig.small_cell_k)."""
    cols = []
    for c in schema.columns:
        if c.name not in real.columns or c.name not in synthetic.columns:
            continue
        if c.kind == "categorical":
            cols.append(_categorical_column(c.name, c.categories, real[c.name], synthetic[c.name], min_cell))
        else:
            cols.append(_numeric_column(c.name, c.kind, real[c.name], synthetic[c.name], min_cell))
    return {"min_cell_count": min_cell,
            "rule": f"real counts of 1-{min_cell - 1} are merged into a neighbouring bin or an 'other' bar, or zeroed; "
                    f"bin edges are round numbers inside the real 1st-99th percentiles and the {min_cell}th "
                    "smallest / largest values",
            "columns": cols}


def correlation_difference(real: pd.DataFrame, synthetic: pd.DataFrame, schema: Schema) -> dict:
    """Pearson correlations among the numeric columns (pairwise complete rows) in each table and the
    matrix of |real - synthetic|. None where a correlation is undefined (a constant column)."""
    cols = [c for c in schema.numeric if c in real.columns and c in synthetic.columns]
    if len(cols) < 2:
        return {"columns": cols, "real": [], "synthetic": [], "abs_diff": [], "max_abs_diff": None,
                "mean_abs_diff": None}
    cr = real[cols].apply(pd.to_numeric, errors="coerce").corr(method="pearson", min_periods=MIN_CELL_COUNT)
    cs = synthetic[cols].apply(pd.to_numeric, errors="coerce").corr(method="pearson", min_periods=MIN_CELL_COUNT)
    diff = (cr - cs).abs()
    off = diff.to_numpy()[~np.eye(len(cols), dtype=bool)]
    off = off[np.isfinite(off)]

    def mat(m: pd.DataFrame) -> list[list[float | None]]:
        return [[_clean(round(float(v), 6)) for v in row] for row in m.to_numpy()]

    return {"columns": cols, "real": mat(cr), "synthetic": mat(cs), "abs_diff": mat(diff),
            "max_abs_diff": _clean(round(float(off.max()), 6)) if len(off) else None,
            "mean_abs_diff": _clean(round(float(off.mean()), 6)) if len(off) else None}


# ---------------------------------------------------------------------------------------------
# Figures -> <img> fragments (aggregates only)
# ---------------------------------------------------------------------------------------------


def plot_id(*parts: str) -> str:
    """A stable, HTML-safe id: `plot-` + lower-case words joined by '-'."""
    slug = "-".join(re.sub(r"[^a-z0-9]+", "-", p.lower()).strip("-") for p in parts)
    return "plot-" + slug


@contextlib.contextmanager
def _style():
    """Matplotlib's built-in defaults plus _RC, whatever the user's matplotlibrc says."""
    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_RC)
        yield


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _img(fig: Figure, pid: str, alt: str) -> str:
    buf = io.BytesIO()
    with _style():
        fig.canvas.print_png(buf, metadata={"Software": None})  # no version string: stable bytes
    w, h = (int(round(x * DPI)) for x in fig.get_size_inches())
    data = base64.b64encode(buf.getvalue()).decode("ascii")
    return (f'<img id="{html.escape(pid)}" class="plot" alt="{html.escape(alt)}" width="{w}" height="{h}" '
            f'src="data:image/png;base64,{data}">')


def _draw(width: float, height: float, pid: str, alt: str, draw) -> str:
    with _style():
        fig = _figure(width, height)
        draw(fig)
        return _img(fig, pid, alt)


def _fmt_edge(v: float) -> str:
    return f"{v:g}"


def _pct(n: int | None, total: int) -> str:
    if n is None:
        return "<5 rows"
    return f"{100.0 * n / total:.1f}%" if total else "—"


def distribution_plot(col: Mapping[str, Any]) -> str:
    """Real vs synthetic for one column from `column_distributions` output: histogram (density on the
    shared bins; open tails hatched) or grouped bars of category shares."""
    name, pid = str(col["name"]), plot_id("dist", str(col["name"]))
    n_r, n_s = max(int(col.get("n_real", 0)), 1), max(int(col.get("n_synthetic", 0)), 1)
    miss = f"missing: real {_pct(col.get('missing_real'), n_r)}, synthetic {_pct(col.get('missing_synthetic'), n_s)}"

    if col.get("kind") == "categorical":
        cats = list(col.get("categories", []))
        labels = [str(c["category"]) for c in cats]
        fr = [c["real"] / n_r for c in cats]
        fs = [c["synthetic"] / n_s for c in cats]

        def draw(fig: Figure) -> None:
            ax = fig.subplots()
            x = np.arange(len(labels))
            ax.bar(x - 0.2, fr, 0.4, label="real", color=REAL_COLOUR)
            ax.bar(x + 0.2, fs, 0.4, label="synthetic", color=SYN_COLOUR)
            for i, c in enumerate(cats):
                if c.get("suppressed"):
                    ax.annotate("<5", (x[i] - 0.2, 0), ha="center", va="bottom", fontsize=7)
            ax.set_xticks(x, [lab if len(lab) <= 12 else lab[:11] + "…" for lab in labels],
                          rotation=45 if len(labels) > 4 or max(map(len, labels or [""])) > 6 else 0,
                          ha="right" if len(labels) > 4 else "center")
            ax.set_ylabel("share of rows")
            ax.set_title(f"{name} (categorical)\n{miss}", fontsize=9)
            ax.set_ylim(0.0, max([*fr, *fs, 0.01]) * 1.25)
            ax.legend(fontsize=7, frameon=False, loc="upper center", ncol=2)

        shown = ", ".join(f"{lab} {100 * a:.1f}% vs {100 * b:.1f}%" for lab, a, b in zip(labels, fr, fs))
        alt = f"Column {name}: share of rows per category, real vs synthetic: {shown}. {miss}."
        return _draw(3.7, 2.8, pid, alt, draw)

    bins = list(col.get("bins", []))
    finite = [b for b in bins if b["lo"] is not None and b["hi"] is not None]
    widths = [b["hi"] - b["lo"] for b in finite] or [1.0]
    tail_w = float(np.median(widths))

    def geometry(b: Mapping[str, Any]) -> tuple[float, float, bool]:
        if b["lo"] is None and b["hi"] is None:
            return 0.0, 1.0, True
        if b["lo"] is None:
            return b["hi"] - tail_w, tail_w, True
        if b["hi"] is None:
            return b["lo"], tail_w, True
        return b["lo"], b["hi"] - b["lo"], False

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for b in bins:  # real: filled bars; synthetic: outline on the same bins; open tails hatched
            left, w, tail = geometry(b)
            ax.bar(left, b["real"] / n_r / w, w, align="edge", color=REAL_COLOUR, alpha=0.35 if tail else 0.6,
                   hatch="///" if tail else None, edgecolor=REAL_COLOUR, linewidth=0.0)
            ax.bar(left, b["synthetic"] / n_s / w, w, align="edge", fill=False, edgecolor=SYN_COLOUR,
                   linewidth=1.4, linestyle="--" if tail else "-")
        ax.legend(handles=[Patch(color=REAL_COLOUR, alpha=0.6, label="real"),
                           Patch(fill=False, edgecolor=SYN_COLOUR, linewidth=1.4, label="synthetic")],
                  fontsize=7, frameon=False, loc="upper center", ncol=2)
        ax.set_ylim(0.0, ax.get_ylim()[1] * 1.2)
        ax.set_ylabel("density")
        ax.set_title(f"{name} ({col.get('kind')})\n{miss}", fontsize=9)
        if col.get("suppressed"):
            ax.text(0.5, 0.5, "suppressed (<5 real values)", ha="center", transform=ax.transAxes)

    if finite:
        rng = f"{_fmt_edge(finite[0]['lo'])} to {_fmt_edge(finite[-1]['hi'])}"
        alt = (f"Column {name}: histogram of real vs synthetic on {len(bins)} shared bins from {rng}"
               f"{' plus open-ended tails' if len(finite) < len(bins) else ''}. {miss}.")
    else:
        alt = f"Column {name}: no histogram (fewer than {MIN_CELL_COUNT} real values). {miss}."
    return _draw(3.7, 2.8, pid, alt, draw)


def correlation_plot(corr: Mapping[str, Any]) -> str:
    """Heatmap of |Pearson(real) - Pearson(synthetic)| among numeric columns (0 = identical)."""
    cols = list(corr.get("columns", []))
    m = np.array([[np.nan if v is None else v for v in row] for row in corr.get("abs_diff", [])], dtype=float)
    if m.size == 0:
        m = np.zeros((max(len(cols), 1), max(len(cols), 1)))
    k = len(cols)
    size = min(8.0, max(4.0, 0.45 * k + 2.5))

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        im = ax.imshow(m, vmin=0.0, vmax=max(0.2, float(np.nanmax(m)) if np.isfinite(m).any() else 0.2),
                       cmap="Reds")
        ax.set_xticks(range(k), cols, rotation=60, ha="right")
        ax.set_yticks(range(k), cols)
        if k <= 14:
            for i in range(k):
                for j in range(k):
                    if np.isfinite(m[i, j]):
                        ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                                color="white" if m[i, j] > 0.5 * im.norm.vmax else "black")
        fig.colorbar(im, ax=ax, shrink=0.8, label="|real − synthetic| Pearson r")
        ax.set_title("Correlation difference (numeric columns)")

    alt = (f"Heatmap of absolute differences between real and synthetic Pearson correlations over {k} "
           f"numeric columns ({', '.join(cols)}); max {_num(corr.get('max_abs_diff'))}, "
           f"mean {_num(corr.get('mean_abs_diff'))}.")
    return _draw(size, size * 0.85, plot_id("correlation", "diff"), alt, draw)


def _num(v: Any) -> str:
    return "—" if v is None else f"{float(v):.3f}"


def tstr_trtr_scores(metrics: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict]]:
    """{family: {"tstr": {value, ci}, "trtr": {value, ci}}} from `tstr_auroc[f]`/`trtr_auroc[f]`
    metrics, or from a `tstr_ratio` metric's detail["families"] when only that is present."""
    out: dict[str, dict[str, dict]] = {}
    pat = re.compile(r"^(tstr|trtr)_auroc\[(.+)\]$")
    for m in metrics:
        hit = pat.match(str(m.get("name", "")))
        if hit and m.get("value") is not None:
            out.setdefault(hit.group(2), {})[hit.group(1)] = {"value": float(m["value"]), "ci": m.get("ci")}
    if not out:
        for m in metrics:
            if m.get("name") == "tstr_ratio":
                for fam, s in sorted((m.get("detail") or {}).get("families", {}).items()):
                    out[fam] = {k: {"value": float(s[k]), "ci": None} for k in ("tstr", "trtr") if k in s}
    return out


def tstr_plot(metrics: Sequence[Mapping[str, Any]]) -> str | None:
    """Grouped bars of TSTR vs TRTR AUROC per model family on the real holdout (error bars = 95% CI)."""
    scores = tstr_trtr_scores(metrics)
    if not scores:
        return None
    fams = sorted(scores)

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        x = np.arange(len(fams))
        for off, kind, colour, label in ((-0.2, "trtr", REAL_COLOUR, "TRTR (train on real)"),
                                         (0.2, "tstr", SYN_COLOUR, "TSTR (train on synthetic)")):
            vals = [scores[f].get(kind, {}).get("value", np.nan) for f in fams]
            cis = [scores[f].get(kind, {}).get("ci") for f in fams]
            err = None
            if any(c for c in cis):
                err = np.array([[v - c[0], c[1] - v] if c else [0.0, 0.0] for v, c in zip(vals, cis)]).T
            bars = ax.bar(x + off, vals, 0.4, yerr=err, capsize=3, color=colour, label=label)
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.axhline(0.5, color="#888", linewidth=0.8, linestyle="--")
        ax.set_xticks(x, fams)
        ax.set_ylim(0.0, 1.2)
        ax.set_yticks(np.linspace(0.0, 1.0, 6))
        ax.set_ylabel("AUROC on real holdout")
        ax.set_title("Utility: TSTR vs TRTR (dashed: chance)")
        ax.legend(fontsize=7, frameon=False, loc="upper center", ncol=2)

    parts = []
    for f in fams:
        t, r = scores[f].get("tstr", {}).get("value"), scores[f].get("trtr", {}).get("value")
        parts.append(f"{f}: TSTR {_num(t)} vs TRTR {_num(r)}")
    alt = "Bar chart of AUROC on the real holdout per model family, " + "; ".join(parts) + "."
    return _draw(5.0, 3.2, plot_id("tstr", "trtr"), alt, draw)


def selection_plot(selection: Mapping[str, Any] | None) -> str | None:
    """generator auto: each candidate's validation utility (TSTR / TRTR) against its privacy (DCR
    share), passing candidates filled, the chosen one ringed; dashed lines at the default thresholds."""
    scored = [c for c in (selection or {}).get("candidates", []) if c.get("tstr_ratio") is not None
              and c.get("dcr_share") is not None]
    if not scored:
        return None
    from synth_pipeline.config import Thresholds

    t = Thresholds()

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for c in scored:
            colour = SYN_COLOUR if c["passed"] else "#bbbbbb"
            ax.scatter(c["dcr_share"], c["tstr_ratio"], s=40, color=colour, edgecolor="black" if c["passed"] else colour)
            if c["generator"] == selection["chosen"]:
                ax.scatter(c["dcr_share"], c["tstr_ratio"], s=160, facecolor="none", edgecolor="black")
            ax.annotate(c["generator"], (c["dcr_share"], c["tstr_ratio"]), fontsize=7, xytext=(5, 4),
                        textcoords="offset points")
        ax.axvline(t.dcr_share_max, color="#888", linewidth=0.8, linestyle="--")
        ax.axhline(t.tstr_ratio_min, color="#888", linewidth=0.8, linestyle="--")
        ax.set_xlabel("DCR share on validation (lower = more private; 0.5 = like fresh data)")
        ax.set_ylabel("TSTR / TRTR on validation")
        ax.set_title("Candidates: utility against privacy (grey: refused by the screen)")

    parts = [f"{c['generator']}: TSTR/TRTR {_num(c['tstr_ratio'])}, DCR share {_num(c['dcr_share'])}, "
             f"{'passes' if c['passed'] else 'refused'}" for c in scored]
    alt = f"Scatter of the auto generator's candidates (chosen: {selection['chosen']}): " + "; ".join(parts) + "."
    return _draw(5.0, 3.4, plot_id("selection"), alt, draw)


def dcr_plot(metrics: Sequence[Mapping[str, Any]]) -> str | None:
    """DCR histograms (synthetic->train vs holdout->train) from a metric's detail["histogram"], else
    bars of the 5th/50th DCR percentiles from memorisation_rate's detail["dcr_quantiles"]."""
    hist = next(((m.get("detail") or {}).get("histogram") for m in metrics
                 if m.get("name") in ("dcr_share", "memorisation_rate") and (m.get("detail") or {}).get("histogram")),
                None)
    if hist:
        return _dcr_histogram(hist, metrics)
    q = next(((m.get("detail") or {}).get("dcr_quantiles") for m in metrics
              if m.get("name") == "memorisation_rate" and (m.get("detail") or {}).get("dcr_quantiles")), None)
    if not q:
        return None
    series = [k for k in ("synthetic_to_train", "holdout_to_train") if k in q]
    stats = ["p5", "p50"]

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        x = np.arange(len(stats))
        for i, (k, colour) in enumerate(zip(series, (SYN_COLOUR, REAL_COLOUR))):
            vals = [float(q[k].get(s, np.nan)) for s in stats]
            bars = ax.bar(x + (i - 0.5) * 0.4, vals, 0.4, color=colour, label=k.replace("_to_", "→"))
            ax.bar_label(bars, fmt="%.3f", fontsize=7, padding=2)
        ax.set_xticks(x, ["5th percentile", "median"])
        ax.set_ylabel("distance to closest train record")
        ax.set_title("DCR quantiles (synthetic→train vs holdout→train)")
        ax.legend(fontsize=7, frameon=False)

    alt = "Bar chart of distance-to-closest-record percentiles: " + "; ".join(
        f"{k.replace('_to_', '→')} 5th {_num(q[k].get('p5'))}, median {_num(q[k].get('p50'))}" for k in series) + "."
    return _draw(5.0, 3.2, plot_id("dcr"), alt, draw)


def _hist_series(hist: Mapping[str, Any]) -> tuple[list[float], dict[str, list[float]]]:
    """Accepts {"edges": [...], "synthetic_to_train": [...], "holdout_to_train": [...]} or per-series
    {"synthetic_to_train": {"edges": [...], "counts": [...]}, ...} (edges shared or per series)."""
    edges = hist.get("edges") or hist.get("bin_edges") or []
    series: dict[str, list[float]] = {}
    for key, val in hist.items():
        if key in ("edges", "bin_edges"):
            continue
        if isinstance(val, Mapping) and "counts" in val:
            series[key] = [float(c) for c in val["counts"]]
            edges = edges or val.get("edges") or val.get("bin_edges") or []
        elif isinstance(val, Sequence) and not isinstance(val, str) and all(isinstance(c, (int, float)) for c in val):
            series[key] = [float(c) for c in val]
    return [float(e) for e in edges], series


def _dcr_histogram(hist: Mapping[str, Any], metrics: Sequence[Mapping[str, Any]]) -> str | None:
    edges, series = _hist_series(hist)
    series = {k: v for k, v in series.items() if len(v) == len(edges) - 1}
    if len(edges) < 2 or not series:
        return None
    e = np.array(edges)
    widths = np.diff(e)
    order = sorted(series, key=lambda k: (not k.startswith("synthetic"), k))
    colours = {k: SYN_COLOUR if k.startswith("synthetic") else REAL_COLOUR for k in order}

    above = hist.get("above_last_edge") if isinstance(hist.get("above_last_edge"), Mapping) else {}
    mem = next((m for m in metrics if m.get("name") == "memorisation_rate"), {})
    line = (mem.get("detail") or {}).get("holdout_p5_dcr")
    line_label = None
    if isinstance(line, (int, float)):
        rule = f" ≤ {mem['threshold']:.2f}" if isinstance(mem.get("threshold"), (int, float)) else ""
        rate = f"{mem['value']:.3f}" if isinstance(mem.get("value"), (int, float)) else "?"
        line_label = f"memorisation line (holdout's 5th percentile): {rate} of synthetic rows left of it{rule}"

    def draw(fig: Figure) -> None:
        ax = fig.subplots()
        for k in order:
            c = np.array(series[k])
            total = (c.sum() + float(above.get(k, 0))) or 1.0  # share of all distances, tail included
            ax.stairs(c / total / widths, e, fill=True, alpha=0.45, color=colours[k],
                      label=k.replace("_to_", "→"))
            ax.stairs(c / total / widths, e, color=colours[k], linewidth=1.0)
        if line_label:
            ax.axvline(float(line), color="#a11", linestyle="--", linewidth=1.2, label=line_label)
        ax.set_xlabel("distance to closest train record")
        ax.set_ylabel("density")
        ax.set_title("DCR: synthetic→train vs holdout→train")
        ax.legend(fontsize=7, frameon=False)

    alt = (f"Histogram of distances to the closest training record on {len(edges) - 1} shared bins from "
           f"{edges[0]:.3g} to {edges[-1]:.3g}, for " + " and ".join(k.replace("_to_", "→") for k in order) + "."
           + (" Beyond the last edge: " + ", ".join(f"{k.replace('_to_', '→')} {int(above[k])}" for k in order
                                                    if k in above) + "." if above else "")
           + (f" Dashed line at distance {float(line):.3g}: the {line_label}." if line_label else ""))
    return _draw(5.0, 3.2, plot_id("dcr"), alt, draw)


def all_plots(plots_data: Mapping[str, Any] | None, reports: Mapping[str, Any]) -> dict[str, str]:
    """{plot id: <img> fragment} for everything drawable from the manifest, in display order."""
    out: dict[str, str] = {}
    for key, fn in (("dcr", dcr_plot), ("tstr", tstr_plot)):
        rep = reports.get("privacy" if key == "dcr" else "utility") or {}
        frag = fn(rep.get("metrics", []))
        if frag:
            out[plot_id(key) if key == "dcr" else plot_id("tstr", "trtr")] = frag
    if plots_data:
        corr = plots_data.get("correlation")
        if corr and len(corr.get("columns", [])) >= 2:
            out[plot_id("correlation", "diff")] = correlation_plot(corr)
        for col in (plots_data.get("columns") or {}).get("columns", []):
            out[plot_id("dist", str(col["name"]))] = distribution_plot(col)
    return out
