"""Agreement with peers (fast): the quantities we share with SDMetrics 0.32 and anonymeter 1.1.0 must
equal the peer's own computation on the same real FLCHAIN split, within the tolerances stated in
benchmarks/agreement.py (which prints the full side-by-side table on FLCHAIN and ACTG175, and
docs/metrics.md explains every difference). A regression in our column shapes, pair trends,
linkability plumbing, DCR share or AUROC scorer fails here."""

import importlib.util
import sys
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from synth_pipeline.metrics.fidelity import column_pair_trends, column_shapes
from synth_pipeline.metrics.privacy import dcr_metrics, linkability
from synth_pipeline.metrics.utility import tstr

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "agreement.py"


@lru_cache(maxsize=1)
def _agreement():
    spec = importlib.util.spec_from_file_location("benchmarks_agreement", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@lru_cache(maxsize=1)
def _data():
    A = _agreement()
    train, holdout, schema = A.load("flchain", seed=0)
    cands = {name: A.candidate(name, train, schema, seed=0) for name in ("gaussian_copula", "copy")}
    return train, holdout, schema, cands


@pytest.fixture(scope="module")
def data():
    return _data()


def test_auroc_and_auprc_scorer_equal_sklearn():
    assert _agreement().scorer_agreement(seed=0) <= _agreement().TOL_SCORER


@pytest.mark.parametrize("cand", ["gaussian_copula", "copy"])
def test_column_shapes_and_pair_trends_equal_sdmetrics(data, cand):
    from sdmetrics.column_pairs import ContingencySimilarity, CorrelationSimilarity
    from sdmetrics.single_column import KSComplement, TVComplement

    train, _, schema, cands = data
    syn = cands[cand]
    direct = [(TVComplement if c in schema.categorical else KSComplement).compute(train[c], syn[c]) for c in schema.names]
    assert column_shapes(train, syn, schema).value == pytest.approx(np.mean(direct), abs=1e-9)
    num, pairs = set(schema.numeric), []
    for i, a in enumerate(schema.names):
        for b in schema.names[i + 1:]:
            cols = [a, b]
            if a in num and b in num:
                pairs.append(CorrelationSimilarity.compute(train[cols], syn[cols]))
            else:
                cont = [c for c in cols if c in num] or None
                pairs.append(ContingencySimilarity.compute(train[cols], syn[cols], continuous_column_names=cont))
    assert column_pair_trends(train, syn, schema, seed=0).value == pytest.approx(np.mean(pairs), abs=1e-9)
    if cand == "copy":
        assert column_shapes(train, syn, schema).value == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize("cand", ["gaussian_copula", "copy"])
def test_linkability_equals_direct_anonymeter_call(data, cand):
    A = _agreement()
    train, holdout, schema, cands = data
    syn = cands[cand]
    ours = linkability(train, holdout, syn, schema, n_attacks=200, seed=0)
    (ori, s, control), aux = A.anonymeter_inputs(train, holdout, syn, schema)
    value, ci = A.direct_linkability(ori, s, control, aux, n_attacks=200, seed=0, n_neighbors=A.link_neighbors(ours),
                                     evaluated_with=ours.detail["n_neighbors_max"])
    assert ours.value == value and ours.ci == pytest.approx(ci, abs=0)
    assert ours.detail["aux_cols"] == [list(a) for a in aux]
    # k read from the one 5-neighbour evaluation = anonymeter evaluated with k itself (k = 1: its default)
    one, _ = A.direct_linkability(ori, s, control, aux, n_attacks=200, seed=0, n_neighbors=1)
    assert ours.detail["per_neighbors"]["1"]["risk"] == one
    if cand == "copy":
        assert ours.value > 0.5  # a copy links most targets


def test_inference_gate_reads_anonymeters_own_interval(data):
    """The lower CI end inference_gate judges equals anonymeter's on FLCHAIN (death, mgus, creatinine);
    the copula passes and the copy is refused on every column."""
    A = _agreement()
    train, holdout, schema, cands = data
    for cand, verdict in (("gaussian_copula", "pass"), ("copy", "refuse")):
        rows = A.inference_gate_rows("flchain", cand, train, holdout, cands[cand], schema, seed=0)
        assert len(rows) == 1 + len(schema.sensitive)
        assert all(r.agrees for r in rows), [(r.metric, r.ours, r.peer) for r in rows]
        assert all(f", {verdict}) vs" in r.metric for r in rows)


def test_sdmetrics_dcr_replica_equals_calculate_dcr(data):
    A = _agreement()
    train, holdout, schema, cands = data
    rows = cands["gaussian_copula"].iloc[:40]
    for reference in (holdout, train.iloc[A.train_subset(train, holdout, 0)]):
        np.testing.assert_allclose(A.gower_dcr_numpy(rows, reference, schema), A.gower_dcr(rows, reference, schema),
                                   rtol=0, atol=1e-12)


def test_dcr_share_agrees_with_sdmetrics_distance_on_one_scale(data):
    """Same share (equal-size train subset, ties 1/2), SDMetrics' DCR on train's ranges: within 0.05."""
    A = _agreement()
    train, holdout, schema, cands = data
    syn = cands["gaussian_copula"]
    share = next(m for m in dcr_metrics(train, holdout, syn, schema, seed=0) if m.name == "dcr_share").value
    sub = train.iloc[A.train_subset(train, holdout, 0)]
    ranges = {c: float(train[c].max() - train[c].min()) for c in schema.numeric}
    peer = A._share(A.gower_dcr_numpy(syn, sub, schema, ranges), A.gower_dcr_numpy(syn, holdout, schema, ranges))
    assert abs(share - peer) <= A.TOL_DCR_SHARE
    assert abs(share - 0.5) < 0.05 and abs(peer - 0.5) < 0.05  # a fresh-sample-like candidate


def test_dcr_copy_control_direction_agrees_with_dcr_overfitting_protection(data):
    """Copy: our share ~0.7 (a train subset of the holdout's size holds ~43% of the copied rows; the
    rest split ~evenly) and SDMetrics' DCROverfittingProtection ~0; the copula scores better on both."""
    from sdmetrics.single_table import DCROverfittingProtection

    A = _agreement()
    train, holdout, schema, cands = data
    md = A.sdv_metadata(schema)
    ours, peer = {}, {}
    for cand in ("copy", "gaussian_copula"):
        syn = cands[cand]
        ours[cand] = next(m for m in dcr_metrics(train, holdout, syn, schema, seed=0) if m.name == "dcr_share").value
        rows = syn.iloc[np.sort(np.random.default_rng(0).choice(len(syn), size=40, replace=False))]
        with warnings.catch_warnings():  # it warns that the holdout is under half the train size: by design here
            warnings.simplefilter("ignore", UserWarning)
            peer[cand] = DCROverfittingProtection.compute(train[schema.names], rows[schema.names], holdout[schema.names],
                                                          md, None)
    assert abs(ours["copy"] - 0.7) < 0.03
    assert peer["copy"] <= 0.05
    assert ours["gaussian_copula"] < ours["copy"] - 0.15
    assert peer["gaussian_copula"] > peer["copy"]


def test_tstr_logreg_auroc_equals_independent_sklearn(data):
    A = _agreement()
    train, holdout, schema, cands = data
    ours = {m.name: m for m in tstr(train, holdout, cands["gaussian_copula"], schema, seed=0)}
    positive = ours["tstr_ratio"].detail["positive"]
    for key, fit_on in (("tstr_auroc[logreg]", cands["gaussian_copula"]), ("trtr_auroc[logreg]", train)):
        assert ours[key].value == pytest.approx(A.independent_logreg_auroc(fit_on, holdout, schema, positive, 0),
                                                abs=A.TOL_TSTR)
