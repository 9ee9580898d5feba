"""Every registered generator on a seeded, stratified 1000-row subsample of the real FLCHAIN table.

Checks the output contract (n rows, schema order and dtypes), determinism, save/load round trips,
the refusal of a tampered pickle, SMOTE's new-rows-only promise, conditions and the copy controls.
ctgan/tvae train for a couple of epochs only: their quality is benchmarked elsewhere.
"""

from pathlib import Path

import pandas as pd
import pytest

from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators import available, load_generator, make_generator
from synth_pipeline.generators.base import META_FILE
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.schema import Schema, conform

FAST = {"ctgan": {"epochs": 2}, "tvae": {"epochs": 2}, "cwgan_gp": {"epochs": 2}, "diffusion": {"epochs": 3},
        "dp_diffusion": {"epochs": 2, "accountant": "rdp"}}
NAMES = sorted(set(available()) - {"auto"})  # auto samples through the generator it chose: tests/test_auto.py
N = 300


@pytest.fixture(scope="module")
def data(flchain_sample) -> tuple[pd.DataFrame, Schema]:
    return flchain_sample


def _fit(name: str, data: tuple[pd.DataFrame, Schema], seed: int = 0):
    train, schema = data
    gen = make_generator(name, **FAST.get(name, {}))
    gen.fit(train, schema, target=schema.target, seed=seed)
    return gen


@pytest.fixture(scope="module")
def fitted(data) -> dict:
    return {name: _fit(name, data) for name in NAMES}


def _keys(df: pd.DataFrame) -> set[tuple]:
    return set(df.astype(str).itertuples(index=False, name=None))


def test_registry_names():
    assert {"gaussian_copula", "ctgan", "tvae", "smote", "copy", "perturbed_copy"} <= set(NAMES)
    assert all(available().values())
    with pytest.raises(BadInput, match="unknown generator"):
        make_generator("nope")
    with pytest.raises(BadInput, match="bad parameters"):
        make_generator("copy", epochs=3)


@pytest.mark.parametrize("name", NAMES)
def test_output_contract(name, fitted, data):
    _, schema = data
    out = fitted[name].sample(N, seed=1)
    assert len(out) == N
    assert list(out.columns) == schema.names
    assert out.dtypes.to_dict() == conform(out, schema).dtypes.to_dict()
    assert all(out[c].dtype == "float64" for c in schema.numeric)
    assert all(out[c].dtype == object for c in schema.categorical)
    assert frame_sha256(out) == frame_sha256(conform(out, schema))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_bytes_other_seed_differs(name, fitted, data):
    again = _fit(name, data)
    first = frame_sha256(fitted[name].sample(N, seed=1))
    assert frame_sha256(again.sample(N, seed=1)) == first
    assert frame_sha256(fitted[name].sample(N, seed=2)) != first


def test_fit_seed_matters_for_trained_models(fitted, data):
    other = _fit("ctgan", data, seed=1)
    assert frame_sha256(other.sample(N, seed=1)) != frame_sha256(fitted["ctgan"].sample(N, seed=1))


@pytest.mark.parametrize("name", NAMES)
def test_save_load_round_trip(name, fitted, data, tmp_path):
    _, schema = data
    fitted[name].save(tmp_path)
    meta = pd.read_json(tmp_path / META_FILE, typ="series")
    assert meta["name"] == name and meta["target"] == schema.target
    assert set(meta["files"]) and all((tmp_path / f).is_file() for f in meta["files"])
    loaded = load_generator(tmp_path)
    assert type(loaded) is type(fitted[name])
    assert frame_sha256(loaded.sample(N, seed=3)) == frame_sha256(fitted[name].sample(N, seed=3))


def test_tampered_sdv_pickle_is_refused(fitted, tmp_path):
    fitted["gaussian_copula"].save(tmp_path)
    with open(tmp_path / "synthesizer.pkl", "ab") as f:
        f.write(b"\0")
    with pytest.raises(GeneratorError, match="sha256"):
        load_generator(tmp_path)


def test_resampling_stores_no_pickle(fitted, tmp_path):
    fitted["smote"].save(tmp_path)
    assert sorted(p.suffix for p in Path(tmp_path).iterdir()) == [".json", ".parquet"]


def test_smote_releases_only_new_rows(fitted, data):
    train, schema = data
    gen = fitted["smote"]
    assert gen.method == "SMOTENC"
    out = gen.sample(len(train), seed=1)
    assert not _keys(out) & _keys(train)
    share = train[schema.target].value_counts(normalize=True)
    assert (out[schema.target].value_counts(normalize=True) - share).abs().max() < 0.01
    assert 0 < out["creatinine"].isna().mean() < 0.4


def test_smote_refuses_a_class_too_small(data):
    train, schema = data
    dead = train[train[schema.target] == "dead"].head(1)
    tiny = pd.concat([train[train[schema.target] == "alive"], dead])
    with pytest.raises(GeneratorError, match="smote: .*fewer than 2 rows"):
        make_generator("smote").fit(tiny, schema, target=schema.target, seed=0)


@pytest.mark.parametrize("name", ["gaussian_copula", "ctgan", "cwgan_gp", "diffusion", "mst", "dp_diffusion", "smote", "borderline_smote", "adasyn", "ros", "rus", "copy", "perturbed_copy"])
def test_conditions_give_the_requested_class(name, fitted, data):
    _, schema = data
    gen = fitted[name]
    one = gen.sample(40, seed=1, conditions=pd.DataFrame({schema.target: ["dead"]}))
    assert len(one) == 40 and set(one[schema.target]) == {"dead"}
    wanted = pd.DataFrame({schema.target: ["alive", "dead"] * 20})
    rows = gen.sample(40, seed=1, conditions=wanted)
    assert rows[schema.target].tolist() == wanted[schema.target].tolist()


def test_bad_conditions_are_refused(fitted, data):
    _, schema = data
    gen = fitted["gaussian_copula"]
    with pytest.raises(GeneratorError, match="not in training"):
        gen.sample(5, seed=0, conditions=pd.DataFrame({schema.target: ["unknown"]}))
    with pytest.raises(GeneratorError, match="exactly the target column"):
        gen.sample(5, seed=0, conditions=pd.DataFrame({schema.target: ["dead"], "age": [50.0]}))
    with pytest.raises(GeneratorError, match="give 1 or 5"):
        gen.sample(5, seed=0, conditions=pd.DataFrame({schema.target: ["dead", "alive"]}))


def test_copy_returns_training_rows(fitted, data):
    train, _ = data
    out = fitted["copy"].sample(2 * len(train) + 7, seed=1)
    assert _keys(out) == _keys(train)


def test_perturbed_copy_moves_numbers_only(fitted, data):
    train, schema = data
    copy = fitted["copy"].sample(len(train), seed=1)
    noisy = fitted["perturbed_copy"].sample(len(train), seed=1)
    pd.testing.assert_frame_equal(noisy[schema.categorical], copy[schema.categorical])
    pd.testing.assert_series_equal(noisy["creatinine"].isna(), copy["creatinine"].isna())
    assert (noisy["kappa"] != copy["kappa"]).mean() > 0.9
    assert ((noisy["kappa"] - copy["kappa"]).abs() < 0.5 * train["kappa"].std()).all()
