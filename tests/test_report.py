"""report.html: every expected plot, self-contained, no real row or rare real value printed, and
rendered by headless Chromium with every image decoded (screenshot kept under test-artifacts/).

Chromium: `make browsers` installs Debian's package. Without /usr/bin/chromium the browser test
skips, except under CI=true where it fails.
"""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig
from synth_pipeline.data import load_dataset
from synth_pipeline.plots import MIN_CELL_COUNT, column_distributions, plot_id
from synth_pipeline.preprocess import model_table
from synth_pipeline.report import render_refusal, render_report

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
DATA = "actg175"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("report") / "out"
    outcome = run_release(RunConfig.from_dict({"data": DATA, "generator": "gaussian_copula"}), out, instance=dg.DagsterInstance.ephemeral())
    assert outcome.status == "published", outcome.message
    rel = Path(outcome.path)
    return {"dir": rel, "manifest": json.loads((rel / "manifest.json").read_text()),
            "html": (rel / "report.html").read_text()}


def _expected_ids(manifest: dict) -> set[str]:
    cols = [c["name"] for c in manifest["schema"]["columns"]]
    return {plot_id("dcr"), plot_id("tstr", "trtr"), plot_id("correlation", "diff"),
            *(plot_id("dist", c) for c in cols)}


def _text_without_images(page: str) -> str:
    return re.sub(r'src="data:image/png;base64,[A-Za-z0-9+/=]*"', 'src=""', page)


def test_report_has_every_plot_with_alt_text_and_a_gate_table(release):
    page, manifest = release["html"], release["manifest"]
    imgs = re.findall(r"<img [^>]*>", page)
    ids = {re.search(r'id="([^"]+)"', i).group(1) for i in imgs}
    assert ids == _expected_ids(manifest)
    for tag in imgs:
        assert re.search(r'alt="[^"]{20,}"', tag) and 'src="data:image/png;base64,' in tag
    # the gate table shows each gate's metrics with value, CI, threshold and verdict
    table = page.split("<table id='gate-table'>", 1)[1].split("</table>", 1)[0]
    for g in manifest["gates"]:
        assert f"<td rowspan='{len(g['metrics'])}'>{g['gate']}</td>" in table
        for m in g["metrics"]:
            fmt = lambda v: "—" if v is None else f"{v:.4g}"  # noqa: E731
            ci = "—" if m["ci"] is None else f"[{m['ci'][0]:.4g}, {m['ci'][1]:.4g}]"
            verdict = {True: "pass", False: "fail"}.get(m["passed"], "")
            assert (f"<td>{m['name']}</td><td>{fmt(m['value'])}</td><td>{ci}</td><td>{fmt(m['threshold'])}</td>"
                    f"<td class='verdict'>{verdict}</td>") in table
    assert "95% CI" in table and "metric verdict" in table
    privacy = manifest["reports"]["privacy"]["metrics"]
    if any("histogram" in (m.get("detail") or {}) for m in privacy):  # DCR histograms when recorded
        dcr = next(i for i in imgs if f'id="{plot_id("dcr")}"' in i)
        assert 'alt="Histogram of distances to the closest training record' in dcr


def test_plotted_numbers_are_in_the_manifest(release):
    data = release["manifest"]["plots_data"]
    cols = data["columns"]
    assert cols["min_cell_count"] == MIN_CELL_COUNT
    assert [c["name"] for c in cols["columns"]] == [c["name"] for c in release["manifest"]["schema"]["columns"]]
    for c in cols["columns"]:
        cells = c.get("bins") or c.get("categories")
        assert cells, c["name"]
        assert all(x["real"] == 0 or x["real"] >= MIN_CELL_COUNT for x in cells)  # small-cell rule
    corr = data["correlation"]
    k = len(corr["columns"])
    assert k >= 2 and len(corr["abs_diff"]) == k and corr["max_abs_diff"] is not None


def test_report_is_self_contained(release):
    page = release["html"]
    assert not re.search(r"""(src|href|action)\s*=\s*["']?\s*(https?:|//|file:)""", page, re.I)
    assert not re.search(r"url\(|@import|<link|<script|<iframe", page, re.I)


def test_no_real_row_or_rare_real_value_is_printed(release):
    loaded = load_dataset(DATA)
    real = model_table(loaded.raw, loaded.schema)
    text = _text_without_images(release["html"])
    edges = {b[k] for c in release["manifest"]["plots_data"]["columns"]["columns"]
             for b in c.get("bins", []) for k in ("lo", "hi") if b[k] is not None}

    def printed(v: float) -> bool:
        s = f"{v:g}"
        return re.search(rf"(?<![\w.]){re.escape(s)}(\.0+)?(?![\w.])", text) is not None

    rare = []
    for col in loaded.schema.numeric:
        counts = real[col].dropna().value_counts()
        values = counts[counts < MIN_CELL_COUNT].index
        # the extremes first (the classic outliers), then other rare values with 3+ significant digits
        picks = [real[col].max(), real[col].min(), *sorted(v for v in values if abs(v) >= 100)[:5]]
        rare += [float(v) for v in picks if counts.get(v, 0) < MIN_CELL_COUNT and float(v) not in edges]
    assert len(rare) >= 10
    leaked = sorted({v for v in rare if printed(v)})
    assert not leaked, f"rare real values printed in report.html: {leaked}"
    assert any(printed(e) for e in edges)  # the check itself can see printed numbers
    for row in real.head(50).itertuples(index=False):  # and no real row as a tuple of values
        cells = [f"{v:g}" if isinstance(v, float) else str(v) for v in row if pd.notna(v)]
        assert ", ".join(cells) not in text


def test_small_cell_rule_merges_and_suppresses():
    from synth_pipeline.schema import ColumnSpec, Schema

    schema = Schema("toy", "y", (ColumnSpec("x", "numeric"), ColumnSpec("y", "categorical", categories=("a", "b", "c"))))
    real = pd.DataFrame({"x": [float(i % 50) for i in range(200)] + [10_000.0], "y": ["a"] * 197 + ["b"] * 2 + ["zz"] * 2})
    syn = pd.DataFrame({"x": [float(i % 40) for i in range(100)], "y": ["a"] * 90 + ["b"] * 5 + ["c"] * 5})
    out = column_distributions(real, syn, schema)["columns"]
    x, y = out
    assert all(b["real"] == 0 or b["real"] >= MIN_CELL_COUNT for b in x["bins"])
    assert sum(b["real"] for b in x["bins"]) == len(real)
    assert 10_000.0 not in {b["lo"] for b in x["bins"]} | {b["hi"] for b in x["bins"]}
    cats = {c["category"]: c for c in y["categories"]}
    assert "zz" not in cats and "b" not in cats  # rare real categories pooled, unknown ones never named
    assert cats["other (<5 each)"]["real"] == 0 and cats["other (<5 each)"]["suppressed"]
    assert cats["a"]["real"] == 197 and cats["c"]["real"] == 0


def test_report_is_rebuilt_byte_for_byte_from_manifest_json(release):
    """Every plotted number is in manifest.json: re-rendering from it gives the published bytes."""
    assert render_report(release["manifest"]) == release["html"]


def test_refusal_page_names_failing_gates_and_shows_their_metrics(release):
    m = release["manifest"]
    entries = [{**g, "passed": g["gate"] != "dcr_gate" and g["passed"], "candidate_sha256": m["synthetic_sha256"],
                "config": m["config"], "at": m["created_at"]} for g in m["gates"]]
    doc = {"dataset": m["dataset"], "run_id": "run-1", "verdict": "refused", "published": False,
           "entries": entries, "failing_gates": ["dcr_gate"], "updated_at": m["created_at"]}
    page = render_refusal(doc)
    assert "refused" in page and "<b>dcr_gate</b>" in page and "nothing was published" in page
    assert f'id="{plot_id("dcr")}"' in page and f'id="{plot_id("tstr", "trtr")}"' in page
    assert "<table id='gate-table'>" in page
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:|//)", page)
    # every gate shows, passing ones too, and a passing metric of the refusing gate is not painted as failed
    table = page.split("<table id='gate-table'>", 1)[1].split("</table>", 1)[0]
    assert all(f">{g['gate']}</td>" in table for g in m["gates"])
    assert "class='gate-fail'>REFUSE" in table and "<tr class='pass'><td rowspan=" in table


def test_release_page_explains_itself_first(release):
    page, m = release["html"], release["manifest"]
    words = page.split("<p id='in-words'>", 1)[1].split("</p>", 1)[0]
    assert f"{m['n_rows']} synthetic rows of {m['dataset']}" in words and "published because all" in words
    assert "<table id='dropped-columns'>" in page and "days" in page.split("id='dropped-columns'")[1][:2000]
    assert "Generator <code>gaussian_copula</code>" in page and m["code_version"]["git_commit"][:12] in page
    assert "<table id='packages'>" in page and "docs/metrics.md" in page
    risks = page.split("<table id='risk-table'>", 1)[1].split("</table>", 1)[0]
    assert "singling_out" in risks and "what it means" not in risks.split("<tr>", 2)[-1]
    assert "c2st" in risks and ("easy to tell apart" in risks or "hard to tell apart" in risks
                                      or "partly distinguishable" in risks)
    dcr = next(i for i in re.findall(r"<img [^>]*>", page) if f'id="{plot_id("dcr")}"' in i)
    assert "Dashed line at distance" in dcr and "memorisation line" in dcr


def test_a_risk_whose_interval_spans_most_of_the_range_is_called_noise():
    from synth_pipeline.report import risk_rows

    reports = {"privacy": {"metrics": [{"name": "singling_out", "value": 0.3, "ci": [0.0, 0.84]},
                                       {"name": "singling_out_multivariate", "value": 0.02, "ci": [0.0, 0.05]}]}}
    wide, narrow = risk_rows(reports, [])
    assert wide["reading"].startswith("noise") and narrow["reading"] == "low"


def _need_chromium() -> None:
    """Skip without Chromium on a developer's machine; fail in CI, where `make test` installs it."""
    if not CHROMIUM.exists():
        msg = f"{CHROMIUM} is missing: run `make browsers` (apt-get install chromium)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def _chromium(*args: str, tmp: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         f"--user-data-dir={tmp / 'profile'}", *args],
        capture_output=True, text=True, timeout=120, env={**os.environ, "HOME": str(tmp)},
    )


def test_headless_chromium_renders_a_refusal_page(release, tmp_path):
    _need_chromium()
    m = release["manifest"]
    doc = {"dataset": m["dataset"], "run_id": "run-2", "verdict": "refused", "published": False,
           "entries": [{**m["gates"][0], "passed": False, "remedy": "Try --generator tvae."}],
           "gates": {g["gate"]: g for g in m["gates"]}, "config": m["config"], "code_version": m["code_version"],
           "packages": m["packages"], "updated_at": m["created_at"]}
    page = tmp_path / "refusal.html"
    page.write_text(render_refusal(doc))
    shot = tmp_path / "refusal.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri(), tmp=tmp_path)
    assert r.returncode == 0 and shot.stat().st_size > 10_000, r.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / f"refusal-{DATA}.png")
    r = _chromium("--dump-dom", page.as_uri(), tmp=tmp_path)
    assert "Try --generator tvae." in r.stdout and "nothing was published" in r.stdout


def test_headless_chromium_renders_every_plot(release, tmp_path):
    _need_chromium()
    page = release["dir"] / "report.html"
    n_imgs = len(re.findall(r"<img ", release["html"]))
    shot = tmp_path / "report.png"
    r = _chromium(f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri(), tmp=tmp_path)
    assert r.returncode == 0 and shot.stat().st_size > 10_000, r.stderr[-2000:]
    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / f"report-{DATA}.png")

    # a copy of the page whose script counts the images that decoded (naturalWidth > 0)
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load',()=>{const i=[...document.images];"
              "document.title='loaded '+i.filter(x=>x.complete&&x.naturalWidth>0).length+' of '+i.length;});</script>")
    probe.write_text(release["html"].replace("</body>", script + "</body>"))
    r = _chromium("--dump-dom", "--virtual-time-budget=5000", probe.as_uri(), tmp=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    title = re.search(r"<title>(.*?)</title>", r.stdout, re.S)
    assert title and title.group(1) == f"loaded {n_imgs} of {n_imgs}", (title and title.group(1), r.stderr[-2000:])
    assert n_imgs == len(_expected_ids(release["manifest"]))
