"""Privacy metrics on tables above the DCR sample size (made small here through the config): sampled
memorisation / DCR share / NNDR with the sample recorded, exact copies still counted over every row,
nothing changed below the size; and a release stopped by SIGTERM during the nearest-neighbour search."""

import os
import signal
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from _flchain import by_name

from synth_pipeline.config import RunConfig, Thresholds
from synth_pipeline.data import load_dataset
from synth_pipeline.gates import dcr_gate
from synth_pipeline.metrics.distances import Z95, wilson_interval, wilson_sample_size
from synth_pipeline.metrics.privacy import dcr_metrics, query_rows

WIDTH = 0.1  # 381 query rows: FLCHAIN's 1,181-row halves of the holdout are sampled
T = Thresholds(dcr_ci_width_max=WIDTH)


@pytest.fixture(scope="module")
def sampled(fresh_data):
    train, holdout, fresh, schema = fresh_data
    return by_name(dcr_metrics(train, holdout, fresh, schema, seed=0, ci_width=WIDTH))


def test_the_sample_size_bounds_the_widest_wilson_interval():
    for width in (0.02, 0.05, WIDTH, 0.3):
        n = wilson_sample_size(width)
        lo, hi = wilson_interval(n / 2, n)
        assert hi - lo <= width < Z95 / np.sqrt(n - 1 + Z95**2)  # n is the fewest that do
    assert wilson_sample_size(Thresholds().dcr_ci_width_max) == 9600


def test_no_bundled_table_is_sampled_under_the_default_width():
    """Gate verdicts on the bundled tables cannot change: every one of their tables is queried whole."""
    size = wilson_sample_size(Thresholds().dcr_ci_width_max)
    for name in ("flchain", "actg175", "gbsg2"):
        assert len(load_dataset(name).raw) < size


def test_sampled_metrics_record_the_sample_and_a_ci_within_the_width(fresh_data, sampled):
    train, holdout, fresh, schema = fresh_data
    size = wilson_sample_size(WIDTH)
    for name in ("memorisation_rate", "nndr"):
        s = sampled[name].detail["sampling"]
        assert s["synthetic"] == {"population": len(fresh), "queried": size, "sampled": True, "sample_size": size,
                                  "ci_width_max": WIDTH, "seed": 0}
        assert s["holdout"]["population"] == len(holdout) and s["holdout"]["queried"] == size
    assert sampled["dcr_share"].detail["sampling"]["synthetic"]["queried"] == size
    for name in ("memorisation_rate", "dcr_share"):
        lo, hi = sampled[name].ci
        assert hi - lo <= WIDTH
    assert sampled["memorisation_rate"].detail["n_synthetic"] == size
    assert sum(sampled["memorisation_rate"].detail["histogram"]["synthetic_to_train"]) <= size
    assert sampled["exact_copies"].detail["n_synthetic"] == len(fresh)  # copies: every row
    assert dcr_gate(list(sampled.values()), T).passed  # a fresh real sample passes on its sample too


def test_sampled_metrics_are_deterministic_for_a_seed(fresh_data, sampled):
    train, holdout, fresh, schema = fresh_data
    again = by_name(dcr_metrics(train, holdout, fresh, schema, seed=0, ci_width=WIDTH))
    assert {n: m.to_dict() for n, m in again.items()} == {n: m.to_dict() for n, m in sampled.items()}
    other = query_rows(len(fresh), wilson_sample_size(WIDTH), 1, 0)
    assert not np.array_equal(other, query_rows(len(fresh), wilson_sample_size(WIDTH), 0, 0))


def test_a_copy_of_train_is_refused_on_its_sample(data):
    train, holdout, schema = data
    res = by_name(dcr_metrics(train, holdout, train, schema, seed=0, ci_width=WIDTH))
    assert res["memorisation_rate"].detail["sampling"]["synthetic"]["sampled"]
    assert res["memorisation_rate"].value == 1.0 and res["nndr"].value == 0.0
    assert res["exact_copies"].detail["synthetic_rare_count"] > 5400  # counted over all 5,511 rows
    gate = dcr_gate(list(res.values()), T)
    assert not gate.passed and "memorisation rate 1.000 > 0.10" in gate.reason


def test_an_exact_copy_outside_the_sample_is_still_counted(fresh_data, sampled):
    train, holdout, fresh, schema = fresh_data
    queried = set(query_rows(len(fresh), wilson_sample_size(WIDTH), 0, 0).tolist())
    spot = next(i for i in range(len(fresh) - 1, -1, -1) if i not in queried)
    planted = fresh.reset_index(drop=True)
    planted.iloc[spot] = train.iloc[7][planted.columns].to_numpy(dtype=object)
    planted = planted.astype(fresh.dtypes.to_dict())
    res = by_name(dcr_metrics(train, holdout, planted, schema, seed=0, ci_width=WIDTH))
    before, after = sampled["exact_copies"].detail, res["exact_copies"].detail
    assert after["synthetic_rare_count"] + after["synthetic_common_count"] == \
        before["synthetic_rare_count"] + before["synthetic_common_count"] + 1
    if after["synthetic_rare_count"] > before["synthetic_rare_count"]:  # a combination fewer than k share
        assert not dcr_gate(list(res.values()), T).passed


def test_below_the_sample_size_every_row_is_queried_as_before(fresh_data):
    train, holdout, fresh, schema = fresh_data
    edge = next(w for w in np.linspace(0.2, 0.001, 2000) if wilson_sample_size(w) >= max(len(fresh), len(holdout)))
    at_edge = by_name(dcr_metrics(train, holdout, fresh, schema, seed=0, ci_width=float(edge)))
    default = by_name(dcr_metrics(train, holdout, fresh, schema, seed=0))
    for name in default:
        a, b = at_edge[name].to_dict(), default[name].to_dict()
        a["detail"].pop("sampling", None), b["detail"].pop("sampling", None)
        assert a == b
    assert default["memorisation_rate"].detail["sampling"]["synthetic"]["sampled"] is False
    assert default["memorisation_rate"].detail["n_synthetic"] == len(fresh)


def test_a_wider_dcr_interval_is_a_recorded_override():
    looser = RunConfig.from_dict({"thresholds": {"dcr_ci_width_max": 0.1}}).overrides()
    assert [o["threshold"] for o in looser] == ["dcr_ci_width_max"]
    assert RunConfig.from_dict({"thresholds": {"dcr_ci_width_max": 0.01}}).overrides() == []


# --- SIGTERM during the nearest-neighbour search ------------------------------------------------

# The CLI with two search threads and the search slowed to half a second per distance tile (tiles of
# 16 reference rows), so it is surely running when the signal comes: it prints SEARCHING on its
# first tile, in a worker thread.
SLOW_SEARCH = r"""
import sys, threading, time
import torch
from synth_pipeline import neighbors
from synth_pipeline.cli import main
torch.set_num_threads(2)
neighbors._CPU_TILE_COLS = 16
real_mm, said = torch.mm, threading.Event()
def slow_mm(*args, **kwargs):
    if threading.current_thread().name.startswith("nearest"):
        if not said.is_set():
            said.set()
            print("SEARCHING", flush=True)
        time.sleep(0.5)
    return real_mm(*args, **kwargs)
torch.mm = slow_mm
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_during_the_dcr_search_stops_the_release_and_leaves_nothing(tmp_path):
    work, out = tmp_path / "work", tmp_path / "out"
    env = {**{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}, "SYNTH_WORK_DIR": str(work)}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_SEARCH, "release", "--data", "gbsg2", "--generator", "gaussian_copula",
                             "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout.readline().strip() == "SEARCHING", proc.stderr.read()
        assert list(work.glob("*/train_split.parquet"))  # real rows on disk while it searches
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=60)  # unstopped, the slowed search alone would take minutes
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code != 0
    assert not out.exists() or not [p for p in out.rglob("*") if p.is_file() and p.name != "ledger.jsonl"]
    assert not work.exists() or list(work.iterdir()) == []


# --- singling-out on large tables ----------------------------------------------------------------


def test_the_coordinated_sample_keeps_copies_with_their_originals(data):
    from synth_pipeline.metrics.attacks import _coordinated_sample, _equal_size_samples

    train, holdout, schema = data
    ori, control = _equal_size_samples(train[schema.names], holdout[schema.names], 0)
    a_ori, a_control, a_syn, record = _coordinated_sample(ori, control, ori, 500, seed=0)
    assert len(a_ori) == len(a_control) == len(a_syn) == 500
    pd.testing.assert_frame_equal(a_syn, a_ori)  # a copy's sample is its original's sample
    assert record["rows_per_side_before"] == len(ori) and record["synthetic_rows"] == 500
    b_ori, *_ = _coordinated_sample(ori, control, ori, 500, seed=0)
    c_ori, *_ = _coordinated_sample(ori, control, ori, 500, seed=1)
    pd.testing.assert_frame_equal(a_ori, b_ori)  # seeded
    assert not a_ori.equals(c_ori)


def test_singling_out_above_the_row_limit_keeps_its_queries_and_sees_a_copy(data, fresh_data, monkeypatch):
    from synth_pipeline.metrics import attacks

    monkeypatch.setattr(attacks, "SINGLING_OUT_ROWS", 800)
    train, holdout, schema = data
    copy = attacks.singling_out(train, holdout, train, schema, n_attacks=100, seed=0)
    shrunk = copy.detail["coordinated_sample"]
    assert shrunk["rows_per_side"] == copy.detail["rows_per_side"] == 800
    assert shrunk["synthetic_rows"] == round(len(train) * 800 / shrunk["rows_per_side_before"])
    assert copy.detail["n_attacks"] == 100 and copy.ci[0] > 0.1
    train, half, fresh, schema = fresh_data
    fresh_so = attacks.singling_out(train, half, fresh, schema, n_attacks=100, seed=0)
    assert fresh_so.detail["coordinated_sample"]["rows_per_side"] == 800
    assert fresh_so.value < copy.ci[0]
