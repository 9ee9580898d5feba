"""The shared torch infrastructure (generators/_torch.py) and the cwgan_gp generator built on it.

On a seeded, stratified 1000-row FLCHAIN subsample: the encoder's round trip and pickle-free JSON,
cwgan_gp's output contract, determinism, class-conditioned sampling, save/load with weights_only,
resume after an interruption; the training loop's early stopping on a toy model. Epochs are tiny:
quality is measured elsewhere.
"""

import json
import os

import numpy as np
import pandas as pd
import pytest
import torch

from synth_pipeline.generators import load_generator, make_generator
from synth_pipeline.generators.encoding import TableEncoder
from synth_pipeline.nn.training import CHECKPOINT_JSON, train
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.schema import Schema, conform

FAST = {"epochs": 3, "batch_size": 200}


@pytest.fixture(scope="module", autouse=True)
def quiet_single_thread():
    """No progress bars; one torch thread (small MLPs, often a shared CI box), restored afterwards."""
    threads, progress = torch.get_num_threads(), os.environ.get("SYNTH_PROGRESS")
    torch.set_num_threads(1)
    os.environ["SYNTH_PROGRESS"] = "0"
    yield
    torch.set_num_threads(threads)
    if progress is None:
        os.environ.pop("SYNTH_PROGRESS", None)
    else:
        os.environ["SYNTH_PROGRESS"] = progress


@pytest.fixture(scope="module")
def data(flchain_sample) -> tuple[pd.DataFrame, Schema]:
    return flchain_sample


def _fit(data, seed: int = 0, **params):
    rows, schema = data
    gen = make_generator("cwgan_gp", **{**FAST, **params})
    gen.fit(rows, schema, target=schema.target, seed=seed)
    return gen


@pytest.fixture(scope="module")
def fitted(data):
    return _fit(data)


def _minority(data) -> str:
    rows, schema = data
    return rows[schema.target].value_counts().idxmin()


# ---- TableEncoder -------------------------------------------------------------------------------


@pytest.mark.parametrize("numeric", ["gmm", "quantile"])
def test_encoder_round_trip(numeric, data):
    rows, schema = data
    assert rows["creatinine"].isna().any()
    enc = TableEncoder(numeric, seed=0).fit(rows, schema)
    x = enc.transform(rows)
    assert x.dtype == np.float32 and x.shape == (len(rows), enc.dim)
    assert enc.spans[-1][1] == enc.dim and len(enc.span_columns) == len(enc.spans)
    for start, end, kind in enc.spans:
        if kind == "softmax":
            np.testing.assert_array_equal(x[:, start:end].sum(axis=1), 1.0)
    back = enc.inverse(x)
    assert list(back.columns) == schema.names
    assert back.dtypes.to_dict() == conform(rows, schema).dtypes.to_dict()
    pd.testing.assert_frame_equal(back[schema.categorical], rows[schema.categorical])
    for c in schema.numeric:
        pd.testing.assert_series_equal(back[c].isna(), rows[c].isna())
        tol = 1e-4 if numeric == "gmm" else 0.02 * rows[c].std()
        assert np.nanmax(np.abs(back[c] - rows[c])) <= tol, c


def test_encoder_layout_and_sampled_inverse(data):
    rows, schema = data
    enc = TableEncoder("gmm", seed=0).fit(rows, schema, columns=["age", "sex", "creatinine"])
    kinds = [k for _, _, k in enc.spans]
    assert enc.span_columns == ["age", "age", "sex", "creatinine", "creatinine", "creatinine"]
    assert kinds == ["tanh", "softmax", "softmax", "tanh", "softmax", "softmax"]
    assert all(len(c["means"]) <= 10 for c in enc.info if c["kind"] == "numeric")
    probs = np.full((4000, enc.dim), 0.5, dtype=np.float32)  # every softmax block a coin flip
    out = enc.inverse(probs, np.random.default_rng(0))
    assert list(out.columns) == ["age", "sex", "creatinine"]
    assert 0.45 < (out["sex"] == "F").mean() < 0.55 and 0.45 < out["creatinine"].isna().mean() < 0.55
    pd.testing.assert_frame_equal(out, enc.inverse(probs, np.random.default_rng(0)))


@pytest.mark.parametrize("numeric", ["gmm", "quantile"])
def test_encoder_json_round_trip_without_pickle(numeric, data):
    rows, schema = data
    enc = TableEncoder(numeric, seed=0).fit(rows, schema)
    text = json.dumps(enc.to_json())  # plain JSON types only, or this raises
    again = TableEncoder.from_json(json.loads(text))
    assert again.spans == enc.spans and again.columns == enc.columns
    x = enc.transform(rows)
    np.testing.assert_array_equal(again.transform(rows), x)
    pd.testing.assert_frame_equal(again.inverse(x), enc.inverse(x))


# ---- cwgan_gp ------------------------------------------------------------------------------------


def test_cwgan_gp_output_contract(fitted, data):
    _, schema = data
    out = fitted.sample(500, seed=1)
    assert len(out) == 500 and list(out.columns) == schema.names
    assert all(out[c].dtype == "float64" for c in schema.numeric)
    assert all(out[c].dtype == object for c in schema.categorical)
    assert frame_sha256(out) == frame_sha256(conform(out, schema))
    assert set(out[schema.target]) <= set(fitted.classes)
    assert fitted.training["epochs_run"] == FAST["epochs"] and fitted.training["best_epoch"] >= 1


def test_cwgan_gp_is_deterministic(fitted, data):
    first = fitted.sample(300, seed=1)
    pd.testing.assert_frame_equal(_fit(data).sample(300, seed=1), first)
    assert frame_sha256(fitted.sample(300, seed=2)) != frame_sha256(first)


def test_cwgan_gp_samples_the_requested_class(fitted, data):
    _, schema = data
    minority = _minority(data)
    out = fitted.sample(5000, seed=0, conditions=pd.DataFrame({schema.target: [minority]}))
    assert len(out) == 5000 and set(out[schema.target]) == {minority}
    wanted = pd.DataFrame({schema.target: ["alive", "dead"] * 20})
    rows = fitted.sample(40, seed=1, conditions=wanted)
    assert rows[schema.target].tolist() == wanted[schema.target].tolist()


def test_cwgan_gp_save_load_weights_only(fitted, tmp_path):
    fitted.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwgan_gp.json", "cwgan_gp.pt", "generator.json"]
    states = torch.load(tmp_path / "cwgan_gp.pt", weights_only=True)  # tensors only, no pickled objects
    assert set(states) == {"generator", "critic"}
    loaded = load_generator(tmp_path)
    pd.testing.assert_frame_equal(loaded.sample(300, seed=3), fitted.sample(300, seed=3))
    minority = _minority_of(fitted)
    cond = pd.DataFrame({fitted.target: [minority]})
    pd.testing.assert_frame_equal(loaded.sample(50, seed=4, conditions=cond), fitted.sample(50, seed=4, conditions=cond))


def _minority_of(gen) -> str:
    return gen.classes[int(np.argmin(gen.class_freq))]


def test_cwgan_gp_resumes_after_interruption(data, tmp_path):
    ckpt = tmp_path / "ckpt"
    _fit(data, epochs=2, checkpoint_dir=str(ckpt))  # the "interrupted" run: 2 of 4 epochs
    assert json.loads((ckpt / CHECKPOINT_JSON).read_text())["epoch"] == 2
    resumed = _fit(data, epochs=4, checkpoint_dir=str(ckpt))
    straight = _fit(data, epochs=4)
    assert resumed.training["history"] == straight.training["history"]
    for a, b in zip(resumed.gen.state_dict().values(), straight.gen.state_dict().values()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(resumed.sample(200, seed=0), straight.sample(200, seed=0))
    states = torch.load(ckpt / json.loads((ckpt / CHECKPOINT_JSON).read_text())["file"], weights_only=True)
    assert set(states) == {"modules", "optimizers", "best"}
    with pytest.raises(ValueError, match="another config"):
        _fit(data, epochs=5, checkpoint_dir=str(ckpt), lr=1e-3)


def test_cwgan_gp_bad_numeric_option_is_refused():
    from synth_pipeline.errors import BadInput

    with pytest.raises(BadInput, match="bad parameters"):
        make_generator("cwgan_gp", numeric="spline")
    with pytest.raises(BadInput, match="bad parameters"):
        make_generator("cwgan_gp", selection="critic")


@pytest.mark.parametrize("selection", ["auroc", "brier"])
def test_selection_score_prefers_rows_that_carry_the_class(selection, data):
    """Known answer: real rows scored against other real rows beat the same rows with their classes
    shuffled (no class signal), which beat noise rows (wrong marginals too)."""
    from synth_pipeline.generators.gan import selection_score

    rows, schema = data
    enc = TableEncoder("gmm", seed=0).fit(rows, schema, columns=[c for c in schema.names if c != schema.target])
    x = torch.as_tensor(enc.transform(rows))
    y = torch.nn.functional.one_hot(torch.as_tensor((rows[schema.target] == "dead").to_numpy(np.int64)), 2).float()
    fake, real, cf, cr = x[:600], x[600:], y[:600], y[600:]
    shuffled = cf[torch.randperm(len(cf), generator=torch.Generator().manual_seed(0))]
    noise = torch.rand(fake.shape, generator=torch.Generator().manual_seed(1))
    good = selection_score(selection, fake, cf, real, cr)
    no_signal = selection_score(selection, fake, shuffled, real, cr)
    assert good < no_signal < selection_score(selection, noise, cf, real, cr)


def test_cwgan_gp_selection_scores_the_same_training_differently(data):
    auroc, brier = _fit(data, epochs=4), _fit(data, epochs=4, selection="brier")
    assert auroc.params["selection"] == "auroc" and brier.params["selection"] == "brier"
    assert len(auroc.training["history"]) == len(brier.training["history"]) == 4
    # the same training run (selection does not touch the optimisation), scored two ways
    assert [h["w"] for h in auroc.training["history"]] == [h["w"] for h in brier.training["history"]]
    assert [h["val"] for h in auroc.training["history"]] != [h["val"] for h in brier.training["history"]]


# ---- train() on a toy model ----------------------------------------------------------------------


def _toy():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    return model, torch.optim.SGD(model.parameters(), lr=0.1)


def test_early_stopping_restores_the_best_weights():
    x = np.random.default_rng(0).normal(size=(100, 3)).astype(np.float32)
    model, opt = _toy()
    snapshots, rising = [], iter(range(100))

    def step(xb):
        opt.zero_grad()
        loss = model(xb).pow(2).mean()
        loss.backward()
        opt.step()
        return {"loss": loss.item()}

    def val_loss(xv):
        snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return float(next(rising))  # rises every epoch: epoch 1 is the best

    result = train({"m": model}, {"m": opt}, step, x, epochs=10, batch_size=16, seed=0,
                   val_loss=val_loss, patience=1)
    assert result.stopped_early and result.epochs_run == 2
    assert result.best_epoch == 1 and result.best_val == 0.0
    assert [h["val"] for h in result.history] == [0.0, 1.0]
    for k, v in model.state_dict().items():
        assert torch.equal(v, snapshots[0][k])
    assert not torch.equal(snapshots[0]["weight"], snapshots[1]["weight"])


def test_train_resume_matches_a_straight_run(tmp_path):
    x = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)

    def run(epochs, **kw):
        model, opt = _toy()

        def step(xb):
            opt.zero_grad()
            loss = (model(xb) - xb.sum(1, keepdim=True)).pow(2).mean() + 0 * torch.rand(1).sum()
            loss.backward()
            opt.step()
            return {"loss": loss.item()}

        result = train({"m": model}, {"m": opt}, step, x, epochs=epochs, batch_size=8, seed=5,
                       val_loss=lambda xv: float(model(xv).pow(2).mean()), **kw)
        return model, result

    run(3, checkpoint_dir=tmp_path)
    resumed, r1 = run(6, checkpoint_dir=tmp_path, resume=True)
    straight, r2 = run(6)
    assert r1.history == r2.history and r1.epochs_run == 6
    assert torch.equal(resumed.weight, straight.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == [CHECKPOINT_JSON, "epoch-0006.pt"]
