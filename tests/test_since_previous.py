"""What changed since the previous release (synth_pipeline.drift): the recorded input profile keeps the
small-cell rule, drift tests flag a real shift and not a resample, the previous release is the latest
complete published folder, and two releases of one dataset through the graph carry the comparison in
the second manifest, its report and its Dagster metadata (the first has none)."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest
from _flchain import flchain

import synth_pipeline as sp
from synth_pipeline.data import load_dataset
from synth_pipeline.drift import EFFECT_MIN, P_MAX, compare, input_drift, input_profile, previous_release
from synth_pipeline.plots import MIN_CELL_COUNT


@pytest.fixture(scope="module")
def table():
    df, schema = flchain()
    return df, schema, input_profile(df, schema)


def test_profile_keeps_the_small_cell_rule_and_no_row(table):
    df, schema, prof = table
    assert prof["rows"] == len(df) and set(prof["columns"]) == set(schema.names)
    for name, col in prof["columns"].items():
        cells = [b["n"] for b in col.get("bins", [])] + list(col.get("categories", {}).values())
        assert cells, name
        assert all(n == 0 or n >= MIN_CELL_COUNT for n in cells), name
        assert col["missing"] is None or col["missing"] == 0 or col["missing"] >= MIN_CELL_COUNT
        counts = df[name].value_counts()
        rare = {float(v) for v in (df[name].min(), df[name].max()) if counts[v] < MIN_CELL_COUNT} if name in schema.numeric else set()
        assert not rare & {b[k] for b in col.get("bins", []) for k in ("lo", "hi")}  # no rare real extreme


def test_a_resample_is_not_flagged_and_a_shift_is(table):
    df, schema, prof = table
    half = df.sample(frac=0.5, random_state=1)
    assert [d.column for d in input_drift(prof, half, schema) if d.flagged] == []
    shifted = df.assign(age=df["age"] + 8)
    rng = np.random.default_rng(0)
    shifted.loc[(df["sex"] == "F") & (rng.random(len(df)) < 0.3), "sex"] = "M"  # 30% of women recorded as men
    drift = {d.column: d for d in input_drift(prof, shifted, schema)}
    assert sorted(c for c, d in drift.items() if d.flagged) == ["age", "sex"]
    assert drift["age"].test == "ks" and drift["age"].p_value < P_MAX and drift["age"].effect >= EFFECT_MIN
    assert drift["sex"].test == "chi2" and drift["sex"].effect >= EFFECT_MIN
    assert drift["kappa"].statistic == 0 and drift["kappa"].p_value == 1  # untouched column: identical bins


def _folder(root: Path, rid: str, created: str, *, verdict="published", files=("synthetic.parquet",), write=True):
    d = root / rid
    d.mkdir(parents=True)
    for f in files if write else ():
        (d / f).write_bytes(b"x")
    body = {"release_id": rid, "verdict": verdict, "created_at": created, "files": {f: "0" * 64 for f in files}}
    (d / "manifest.json").write_text(json.dumps(body))


def test_previous_release_is_the_latest_complete_published_folder(tmp_path):
    _folder(tmp_path, "20261201-a", "2026-12-01T01:00:00+00:00")
    _folder(tmp_path, "20261202-b", "2026-12-02T01:00:00+00:00")
    _folder(tmp_path, ".tmp-20261203-c-1-ab", "2026-12-03T01:00:00+00:00")  # being written
    _folder(tmp_path, "20261204-d", "2026-12-04T01:00:00+00:00", write=False)  # files missing
    _folder(tmp_path, "20261205-e", "2026-12-05T01:00:00+00:00", verdict="refused")
    (tmp_path / "refusals").mkdir()
    assert previous_release(tmp_path)["release_id"] == "20261202-b"
    assert previous_release(tmp_path, exclude="20261202-b")["release_id"] == "20261201-a"
    assert previous_release(tmp_path / "absent") is None


def test_compare_reports_schema_rows_and_every_gate_metric(table):
    df, schema, prof = table
    gate = lambda v, ok: [{"gate": "dcr_gate", "passed": ok, "metrics": [{"name": "dcr_share", "value": v}]}]  # noqa: E731
    prev = {"release_id": "r1", "input_profile": prof, "input": {"rows": 10, "sha256": "a"}, "n_rows": 5,
            "schema": {"columns": [{"name": c.name, "kind": c.kind} for c in schema.columns] + [{"name": "gone", "kind": "numeric"}]},
            "gates": gate(0.5, True)}
    cur = {"input": {"rows": 12, "sha256": "b"}, "n_rows": 5, "gates": gate(0.7, False)}
    c = compare(prev, cur, df.drop(columns=["kappa"]), schema)
    assert c.columns_removed == ("gone",) and c.columns_added == () and not c.same_input
    assert next(r for r in c.rows if r.what == "input rows").current == 12
    assert [(m.what, m.previous, m.current) for m in c.metrics] == [("dcr_gate: dcr_share", 0.5, 0.7)]
    assert [(g.previous, g.current) for g in c.gates] == [("pass", "refuse")]
    assert "kappa" not in {d.column for d in c.drift}
    assert json.loads(json.dumps(c.to_dict()))["flagged"] == list(c.flagged)  # plain JSON (Dagster metadata)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    """Two nightly releases of one dataset through sp.release: the table as is, then with age + 10."""
    out = tmp_path_factory.mktemp("nightly") / "releases"
    df = load_dataset("actg175").raw
    instance = dg.DagsterInstance.ephemeral()
    kw = dict(target="cens", generator="gaussian_copula", out=out, name="actg175_nightly", drop=["days"],
              seed=0, instance=instance)
    first = sp.release(df, **kw)
    second = sp.release(df.assign(age=df["age"] + 10), **kw)
    meta = instance.get_latest_materialization_event(dg.AssetKey("release")).asset_materialization.metadata
    return first, second, meta


def _manifest(result) -> dict:
    return json.loads(result.manifest_path.read_text())


def test_second_release_compares_itself_with_the_first(nightly):
    first, second, meta = nightly
    assert first.published and second.published, (first.message, second.message)
    assert _manifest(first)["since_previous"] is None
    since = _manifest(second)["since_previous"]
    assert since["previous_release_id"] == first.release_dir.name
    assert since["flagged"] == ["age"]  # the only column that changed
    assert not since["same_input"] and since["columns_added"] == [] and since["columns_removed"] == []
    gate_metrics = {m["what"] for m in since["metrics"]}
    assert {"dcr_gate: dcr_share", "dcr_gate: memorisation_rate", "tstr_gate: tstr_ratio"} <= gate_metrics
    assert len(gate_metrics) == sum(len(g["metrics"]) for g in _manifest(second)["gates"])
    assert meta["since_previous"].value["flagged"] == ["age"]
    page = (second.release_dir / "report.html").read_text()
    assert "id='since-previous'" in page and "DRIFT" in page and first.release_dir.name in page
    assert "id='since-previous'" not in (first.release_dir / "report.html").read_text()
