"""The differentially private generators (issue 14): MST's accounting and public domain, dp_diffusion's
DP-SGD through Opacus, the ε refusal (exit 3) and the (ε, δ) record in the manifest and report."""

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from synth_pipeline.data.infer import INFERRED_NOTE
from synth_pipeline.errors import BadInput, GeneratorError
from synth_pipeline.generators import load_generator, make_generator
from synth_pipeline.generators import mst as mst_module
from synth_pipeline.generators.dp_budget import cdp_delta, cdp_eps, cdp_rho
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.schema import conform
from test_cli import run


@pytest.fixture(scope="module")
def data(flchain_sample):
    return flchain_sample


@pytest.fixture(scope="module")
def mst(data):
    train, schema = data
    gen = make_generator("mst", epsilon=1.0, delta=1e-6)
    gen.fit(train, schema, target=schema.target, seed=0)
    return gen


@pytest.mark.parametrize("eps,delta", [(0.5, 1e-6), (3.0, 1e-6), (10.0, 1e-9)])
def test_zcdp_conversion_round_trips_and_respects_delta(eps, delta):
    rho = cdp_rho(eps, delta)
    assert 0 < rho < eps
    assert cdp_delta(rho, eps) <= delta < cdp_delta(rho * 1.01, eps)  # the largest such rho
    assert cdp_eps(rho, delta) == pytest.approx(eps, rel=1e-6)
    assert cdp_eps(rho, delta) <= rho + 2 * math.sqrt(rho * math.log(1 / delta))  # the classical bound is looser


def test_mst_budget_split_and_noise_scales(mst, data):
    _, schema = data
    p = mst.privacy
    d, rho = len(schema.names), p["details"]["rho"]
    det = p["details"]
    assert rho == pytest.approx(cdp_rho(1.0, 1e-6))
    assert det["rho_1way"] + det["rho_select"] + det["rho_2way"] == pytest.approx(rho)
    # Gaussian mechanism, sensitivity 1 per marginal: d marginals at sigma_1 spend d / (2 sigma_1^2)
    assert det["sigma_1way"] == pytest.approx(math.sqrt(3 * d / (2 * rho)))
    assert d / (2 * det["sigma_1way"] ** 2) == pytest.approx(rho / 3)
    assert (d - 1) / (2 * det["sigma_2way"] ** 2) == pytest.approx(rho / 3)
    # d - 1 exponential-mechanism rounds, each eps^2 / 8 zCDP
    assert (d - 1) * det["em_epsilon_per_round"] ** 2 / 8 == pytest.approx(rho / 3)
    assert p["epsilon_spent"] <= p["epsilon"] + 1e-9 and p["delta"] == 1e-6
    tree = det["tree"]
    assert len(tree) == d - 1 and {c for e in tree for c in e} == set(schema.names)  # spans every column


def test_mst_noise_has_the_recorded_sigma(data, monkeypatch):
    """The noise MST adds is N(0, sigma^2) with the recorded sigmas: capture every draw."""
    train, schema = data
    draws = []
    real = mst_module.gaussian_noise

    def spy(rng, sigma, shape):
        out = real(rng, sigma, shape)
        draws.append((sigma, np.asarray(out).ravel()))
        return out

    monkeypatch.setattr(mst_module, "gaussian_noise", spy)
    gen = make_generator("mst", epsilon=1.0)
    gen.fit(train, schema, target=schema.target, seed=0)
    det, d = gen.privacy["details"], len(schema.names)
    assert sorted({round(s, 9) for s, _ in draws}) == sorted({round(det["sigma_1way"], 9), round(det["sigma_2way"], 9)})
    assert sum(s == det["sigma_1way"] for s, _ in draws) == d and sum(s == det["sigma_2way"] for s, _ in draws) == d - 1
    for sigma in (det["sigma_1way"], det["sigma_2way"]):
        z = np.concatenate([x for s, x in draws if s == sigma]) / sigma
        se = 1 / math.sqrt(len(z))  # 4 standard errors: a wrong scale (e.g. sigma / sqrt(d)) lands far outside
        assert len(z) > 100 and abs(z.mean()) < 4 * se and abs(z.std() - 1) < 4 * se / math.sqrt(2)


def test_mst_output_contract_determinism_and_round_trip(mst, data, tmp_path):
    train, schema = data
    out = mst.sample(400, seed=1)
    assert list(out.columns) == schema.names and len(out) == 400
    assert frame_sha256(out) == frame_sha256(conform(out, schema))
    for spec in schema.columns:  # inside the declared domain
        if spec.kind == "categorical":
            assert set(out[spec.name].dropna()) <= set(spec.categories)
        else:
            assert out[spec.name].dropna().between(spec.min, spec.max).all()
    again = make_generator("mst", epsilon=1.0, delta=1e-6)
    again.fit(train, schema, target=schema.target, seed=0)
    assert frame_sha256(again.sample(400, seed=1)) == frame_sha256(out)
    other = make_generator("mst", epsilon=1.0, delta=1e-6)
    other.fit(train, schema, target=schema.target, seed=1)
    assert frame_sha256(other.sample(400, seed=1)) != frame_sha256(out)
    mst.save(tmp_path)
    assert frame_sha256(load_generator(tmp_path).sample(400, seed=1)) == frame_sha256(out)


def test_mst_binning_reads_no_private_bounds(data):
    """A training value far outside kappa's declared [0, 100] changes no bin edge and no category list."""
    train, schema = data
    changed = train.copy()
    changed.loc[0, "kappa"] = 1e6
    changed.loc[1, "age"] = -40.0
    a, b = make_generator("mst", epsilon=1.0), make_generator("mst", epsilon=1.0)
    a.fit(train, schema, target=schema.target, seed=0)
    b.fit(changed, schema, target=schema.target, seed=0)
    assert a.domains == b.domains
    kappa = next(d for d in a.domains if d.name == "kappa")
    assert kappa.edges[0] == 0 and kappa.edges[-1] == 100 and len(kappa.edges) == 257
    assert b.sample(500, seed=0)["kappa"].max() <= 100


def test_mst_refuses_an_inferred_schema_until_bounds_and_categories_are_declared(data):
    train, schema = data
    inferred = replace(schema, columns=tuple(replace(c, min=None, max=None) for c in schema.columns),
                       notes={"schema": INFERRED_NOTE})
    with pytest.raises(BadInput, match=r"'age' has no declared bounds.*\"bounds\""):
        make_generator("mst").fit(train, inferred, target=schema.target, seed=0)
    bounds = {c: [schema.column(c).min, schema.column(c).max] for c in schema.numeric}
    with pytest.raises(BadInput, match=r"no declared category list.*\"categories\""):
        make_generator("mst", bounds=bounds).fit(train, inferred, target=schema.target, seed=0)
    cats = {c: list(schema.column(c).categories) for c in schema.categorical}
    gen = make_generator("mst", bounds=bounds, categories=cats)
    gen.fit(train, inferred, target=schema.target, seed=0)
    assert len(gen.sample(50, seed=0)) == 50


@pytest.mark.parametrize("params", [{"epsilon": 0}, {"epsilon": -1.0}, {"delta": 1.0}, {"epsilon": float("nan")},
                                    {"epsilon": "3"}])
def test_bad_budgets_are_bad_input(params):
    for name in ("mst", "dp_diffusion"):
        with pytest.raises(BadInput, match=f"generator '{name}': (epsilon|delta)"):
            make_generator(name, **params)


def test_an_unreachable_epsilon_is_refused_with_the_reason(data):
    train, schema = data
    with pytest.raises(GeneratorError, match=r"mst: cannot meet epsilon=0.05 .*raise epsilon or use more rows"):
        make_generator("mst", epsilon=0.05).fit(train.head(60), schema, target=schema.target, seed=0)
    with pytest.raises(GeneratorError, match=r"dp_diffusion: cannot meet epsilon=0.2 .*noise multiplier"):
        make_generator("dp_diffusion", epsilon=0.2, epochs=2, accountant="rdp", max_noise_multiplier=0.5).fit(
            train, schema, target=schema.target, seed=0)


def test_dp_diffusion_trains_under_opacus_within_its_epsilon(data, tmp_path):
    train, schema = data
    gen = make_generator("dp_diffusion", epsilon=3.0, epochs=2, accountant="rdp")
    gen.fit(train, schema, target=schema.target, seed=0)
    p, sgd = gen.privacy, gen.privacy["details"]["sgd"]
    assert sgd["accountant"] == "rdp" and sgd["noise_multiplier"] > 0 and sgd["epochs"] == 2
    assert sgd["sample_rate"] == pytest.approx(1 / math.ceil(len(train) / 256))
    assert 0 < sgd["epsilon_spent"] <= p["details"]["epsilon_sgd_target"] + 1e-6
    assert p["epsilon_spent"] <= p["epsilon"] + 1e-6
    assert gen.training["best_epoch"] is None  # no validation rows, no best-epoch pick
    out = gen.sample(200, seed=1)
    assert list(out.columns) == schema.names
    gen.save(tmp_path)
    loaded = load_generator(tmp_path)
    assert loaded.privacy == p and frame_sha256(loaded.sample(200, seed=1)) == frame_sha256(out)


def test_dp_training_refuses_an_opacus_incompatible_module():
    import torch

    from synth_pipeline.nn.training import DPTraining, train

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 1))
    opt = {"sgd": torch.optim.SGD(net.parameters(), lr=0.1)}

    def step(x):
        loss = net(x).pow(2).mean()
        opt["sgd"].zero_grad()
        loss.backward()
        opt["sgd"].step()
        return {"loss": float(loss)}

    with pytest.raises(ValueError, match="not DP-SGD compatible"):
        train({"net": net}, opt, step, np.zeros((64, 3), np.float32), epochs=1, batch_size=16, seed=0,
              dp=DPTraining(epsilon=3.0, delta=1e-6, module="net", optimizer="sgd"))


def _release(tmp_path: Path, params: dict, data: str = "gbsg2") -> tuple:
    config = tmp_path / "dp.json"
    config.write_text(json.dumps({"link_attacks": 200, "generator_params": params}))
    out = tmp_path / "out"
    proc = run("release", "--data", data, "--generator", "mst", "--config", str(config), "--out", str(out),
               cwd=tmp_path)
    return proc, out


def test_cli_refuses_an_unreachable_epsilon_with_exit_3(tmp_path):
    proc, out = _release(tmp_path, {"epsilon": 0.01})
    assert proc.returncode == 3, proc.stderr
    records = list(out.rglob("refusals/*.json"))
    assert len(records) == 1
    doc = records[0].read_text()
    assert "mst: cannot meet epsilon=0.01" in doc and '"epsilon": 0.01' in doc


def test_the_manifest_and_report_record_epsilon_and_delta(tmp_path):
    proc, _ = _release(tmp_path, {"epsilon": 10.0, "delta": 1e-7}, "flchain")  # MST fails TSTR on GBSG2
    assert proc.returncode == 0, proc.stderr
    rel = Path(proc.stdout.split("published ")[1].strip())
    manifest = json.loads((rel / "manifest.json").read_text())
    privacy = manifest["privacy"]
    assert (privacy["epsilon"], privacy["delta"]) == (10.0, 1e-7) and privacy["epsilon_spent"] <= 10.0
    assert manifest["config"]["generator_params"] == {"epsilon": 10.0, "delta": 1e-7}
    report = (rel / "report.html").read_text()
    assert "id='privacy-guarantee'" in report and "requested ε = <b>10</b>, δ = 1e-07" in report
    assert run("audit", str(rel), cwd=tmp_path).returncode == 0
    assert pd.read_parquet(rel / "synthetic.parquet").shape[1] == len(manifest["schema"]["columns"])
