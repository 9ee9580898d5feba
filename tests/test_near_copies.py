"""Near copies (synth_pipeline.near_copies): the floor τ is the q-quantile of train's leave-one-out
nearest-neighbour distances in the DCR metric's space; the rare-copy filter's one redraw loop
redraws rows closer than τ; copies are refused whatever q; a release records what it did."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
from sklearn.neighbors import NearestNeighbors

from synth_pipeline import preprocess
from synth_pipeline.cli import run_release
from synth_pipeline.config import RunConfig
from synth_pipeline.copies import filter_rare_copies, generator_redraw, redraw_seed
from synth_pipeline.data import load_dataset
from synth_pipeline.gates import dcr_gate
from synth_pipeline.generators import make_generator
from synth_pipeline.metrics.privacy import dcr_metrics, fit_embedding
from synth_pipeline.near_copies import distance_floor, quantile_for
from synth_pipeline.schema import ColumnSpec, Schema

SCHEMA = Schema("toy", "cls", (ColumnSpec("v", "numeric"), ColumnSpec("w", "numeric"),
                               ColumnSpec("g", "categorical"), ColumnSpec("cls", "categorical")))


def _toy(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"v": rng.normal(size=n).round(6), "w": rng.normal(size=n).round(6),
                         "g": rng.choice(["a", "b"], n), "cls": rng.choice(["no", "yes"], n, p=[0.7, 0.3])})


def test_the_floor_is_a_quantile_of_train_leave_one_out_distances_in_the_dcr_space():
    train = _toy(300, 0)
    floor = distance_floor(train, SCHEMA, 0.1)
    x = fit_embedding(train, SCHEMA).transform(train)
    d, _ = NearestNeighbors(n_neighbors=2).fit(x).kneighbors(x)  # sklearn, independent of our engine
    assert floor.threshold == pytest.approx(np.quantile(d[:, 1], 0.1), rel=1e-9)
    share = floor.mask(_toy(3000, 1)).mean()  # fresh patients: about q of them sit that close to train
    assert 0.05 < share < 0.15
    assert distance_floor(train, SCHEMA, 0.0) is None


def test_near_copies_are_redrawn_in_the_same_loop_as_rare_copies():
    train = _toy(300, 0)
    near = train.iloc[:20].assign(v=lambda f: f["v"] + 1e-3)  # not equal to any training row: hashing misses them
    candidate = pd.concat([_toy(200, 5), near, train.iloc[[20, 21]]], ignore_index=True)
    floor = distance_floor(train, SCHEMA, 0.05)
    by_chance = int(floor.mask(candidate.iloc[:200]).sum())
    calls = []

    def redraw(n, seed, labels):
        calls.append((n, seed))
        return _toy(n, seed).assign(cls=labels)

    out, res = filter_rare_copies(candidate, train=train, schema=SCHEMA, k=5, redraw=redraw, seed=3, near=floor)
    assert (res.rare_copies, res.near_copies) == (2, 22 + by_chance)  # an exact copy is a near copy too
    assert calls[0] == (22 + by_chance, redraw_seed(3, 1))  # one redraw per flagged row, both kinds at once
    assert res.redrawn + res.removed == 22 + by_chance and res.rows_after == len(candidate) - res.removed
    assert (floor.distances(out) >= floor.threshold).all()
    kept = ~floor.mask(candidate.iloc[:200])
    pd.testing.assert_frame_equal(out.iloc[:200][kept].reset_index(drop=True),
                                  candidate.iloc[:200][kept].reset_index(drop=True), check_dtype=False)
    record = res.to_dict()
    assert (record["near_copy_quantile"], record["near_copy_distance"]) == (0.05, floor.threshold)
    json.dumps(record)
    _, plain = filter_rare_copies(candidate, train=train, schema=SCHEMA, k=5, redraw=redraw, seed=3)
    assert (plain.rare_copies, plain.near_copies, plain.redrawn) == (2, 0, 2)  # without a floor the 20 stay


@pytest.fixture(scope="module")
def gbsg2():
    lt = load_dataset("gbsg2")
    s = preprocess.split(preprocess.model_table(lt.raw, lt.schema), lt.schema, holdout_fraction=0.3, seed=0)
    return s.train, s.holdout, lt.schema


@pytest.mark.parametrize("q", [0.05, 0.5])
def test_copies_are_still_refused_with_the_filter_on(gbsg2, q):
    """The floor redraws a copy's rows (their redraws are copies again) until none is left: refused,
    never thinned into a pass. A perturbed copy's redraws that land beyond τ are still training rows
    moved a little, and dcr_gate refuses them."""
    train, holdout, schema = gbsg2
    floor = distance_floor(train, schema, q)
    for name in ("copy", "perturbed_copy"):
        gen = make_generator(name)
        gen.fit(train, schema, target=schema.target, seed=0)
        out, res = filter_rare_copies(gen.sample(len(train), seed=0), train=train, schema=schema, k=5,
                                      redraw=generator_redraw(gen, schema.target), seed=0, near=floor)
        if name == "copy":
            assert res.rows_after == 0 and not res.passed
        else:
            gate = dcr_gate(dcr_metrics(train, holdout, out, schema, seed=0, k=5), RunConfig().thresholds)
            assert not (res.passed and gate.passed), gate.reason


def test_a_release_records_the_floor_and_what_it_redrew(tmp_path: Path):
    cfg = RunConfig.from_dict({"data": "gbsg2", "generator": "gaussian_copula", "near_copy_quantile": 0.05,
                                "link_attacks": 200})
    outcome = run_release(cfg, tmp_path / "out", instance=dg.DagsterInstance.ephemeral())
    assert outcome.status == "published", outcome.message
    manifest = json.loads((Path(outcome.path) / "manifest.json").read_text())
    record = manifest["copy_filter"]
    assert manifest["config"]["near_copy_quantile"] == record["near_copy_quantile"] == 0.05
    assert record["near_copy_distance"] > 0 and record["near_copies"] > 0
    assert record["redrawn"] + record["removed"] >= record["near_copies"]


def test_unset_the_generator_chooses_the_floor_and_the_config_overrides_it():
    diffusion, copula = make_generator("diffusion"), make_generator("gaussian_copula")
    assert quantile_for(None, diffusion) == 0.13 and quantile_for(None, copula) == 0.0
    assert quantile_for(0.0, diffusion) == 0.0 and quantile_for(0.05, copula) == 0.05  # the config's, when set
    assert quantile_for(None, make_generator("dp_diffusion", epsilon=3.0)) == 0.0  # outside its ε otherwise
    auto = make_generator("auto")
    auto.chosen = diffusion
    assert quantile_for(None, auto) == 0.13  # auto filters as the family it chose
    assert RunConfig.from_dict({}).near_copy_quantile is None
