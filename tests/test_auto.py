"""`--generator auto`: selection on a validation split carved from train, never the holdout."""

import json
from pathlib import Path

import pytest

from _flchain import flchain, split
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators import load_generator, make_generator


@pytest.fixture(scope="module")
def flchain_train():
    """FLCHAIN's training split as the pipeline makes it: the screen's TSTR gate needs real-sized data
    (on a 1,000-row sample the copula's validation TSTR / TRTR is 0.84 and nothing passes)."""
    df, schema = flchain()
    return split(df, schema)[0], schema


@pytest.fixture(scope="module")
def fitted(flchain_train):
    train, schema = flchain_train
    gen = make_generator("auto", candidates=["copy", "gaussian_copula"])
    gen.fit(train, schema, target=schema.target, seed=0)
    return gen


def test_a_copy_is_never_chosen_however_useful(fitted, flchain_train):
    """The screen filters each candidate's rows as the run will: a copy of train loses every row to the
    copy filter (each copies a patient fewer than k share), which refuses it before any gate."""
    rows = {r["generator"]: r for r in fitted.selection["candidates"]}
    assert not rows["copy"]["passed"] and "the copy filter removed all" in rows["copy"]["reason"]
    chosen = fitted.selection["chosen"]
    assert chosen != "copy" and rows[chosen]["passed"]
    passing = [r for r in rows.values() if r["passed"]]
    assert rows[chosen]["tstr_ratio"] == max(r["tstr_ratio"] for r in passing)
    n = fitted.selection["validation_rows"] + fitted.selection["fit_rows"]
    assert n == len(flchain_train[0]) and abs(fitted.selection["validation_rows"] - 0.2 * n) <= 1


def test_the_choice_survives_save_and_load_and_samples_like_the_chosen_one(fitted, flchain_train, tmp_path):
    fitted.save(tmp_path / "g")
    again = load_generator(tmp_path / "g")
    assert again.selection == json.loads(json.dumps(fitted.selection, default=float))
    assert again.sample(50, seed=3).equals(fitted.sample(50, seed=3))
    chosen = make_generator(fitted.selection["chosen"])
    train, schema = flchain_train
    chosen.fit(train, schema, target=schema.target, seed=0)  # refitted on all of train, as auto does
    assert chosen.sample(50, seed=3).equals(fitted.sample(50, seed=3))


def test_nothing_passing_refuses_with_every_reason(flchain_sample):
    train, schema = flchain_sample  # small: the copies are refused by dcr_gate whatever the size
    gen = make_generator("auto", candidates=["copy", "perturbed_copy"])
    with pytest.raises(GeneratorError, match=r"no candidate passes the screen.*copy: the copy filter removed all.*perturbed_copy: "):
        gen.fit(train, schema, target=schema.target, seed=0)


def test_bad_portfolios_are_one_line():
    with pytest.raises(BadInput, match="other than 'auto'"):
        make_generator("auto", candidates=["auto"])
    with pytest.raises(BadInput, match="validation_fraction"):
        make_generator("auto", validation_fraction=0.9)
    with pytest.raises(BadInput, match="generator_params.candidates: unknown generator 'copula'; did you mean"):
        make_generator("auto", candidates=["copula"])


def test_an_auto_release_records_every_candidate_in_manifest_and_report(tmp_path, capsys):
    from synth_pipeline.cli import main

    cfg = tmp_path / "auto.json"
    cfg.write_text(json.dumps({"generator": "auto", "link_attacks": 200,
                               "generator_params": {"candidates": ["copy", "gaussian_copula"]}}))
    code = main(["release", "--data", "flchain", "--config", str(cfg), "--out", str(tmp_path / "releases")])
    out = capsys.readouterr()
    assert code == 0, out.err
    release = Path(out.out.split("published ")[1].strip())
    manifest = json.loads((release / "manifest.json").read_text())
    assert manifest["generator"] == "auto" and manifest["selection"]["chosen"] == "gaussian_copula"
    rows = {c["generator"]: c for c in manifest["selection"]["candidates"]}
    assert set(rows) == {"copy", "gaussian_copula"} and not rows["copy"]["passed"] and rows["gaussian_copula"]["passed"]
    html = (release / "report.html").read_text()
    assert "id='selection-candidates'" in html and 'id="plot-selection"' in html
