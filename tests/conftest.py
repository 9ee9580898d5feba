"""Shared real-data fixtures: FLCHAIN split as the pipeline splits it, and a fresh real sample."""

import pytest
from _flchain import flchain, split


@pytest.fixture(scope="module")
def data():
    """train (70%) and holdout (30%) of real FLCHAIN, stratified and seeded as the pipeline does."""
    df, schema = flchain()
    train, holdout = split(df, schema)
    return train, holdout, schema


@pytest.fixture(scope="module")
def fresh_data(data):
    """A fresh real sample as the "synthetic" table: the holdout halved, one half judged against the
    other. (The holdout itself as synthetic would sit at distance 0 from the holdout: share 0.)"""
    train, holdout, schema = data
    half, fresh = split(holdout, schema, test_size=0.5, seed=1)
    return train, half, fresh, schema


@pytest.fixture(scope="session")
def flchain_sample():
    """1,000 real FLCHAIN rows (stratified, seeded) and the schema: small enough to fit any generator
    in seconds, real enough that what the tests assert is about real data."""
    from sklearn.model_selection import train_test_split

    df, schema = flchain()
    rows, _ = train_test_split(df, train_size=1000, stratify=df[schema.target], random_state=0)
    return rows.reset_index(drop=True), schema


@pytest.fixture(scope="session")
def dask_cluster():
    """A two-worker dask.distributed LocalCluster (separate processes, as a remote cluster's workers)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


@pytest.fixture(scope="session", autouse=True)
def signing_key_home(tmp_path_factory):
    """Releases made by the tests are signed with a development key in a temp folder, never the
    user's own (~/.config/synth-pipeline) or a configured one; subprocesses inherit it."""
    import os

    os.environ.pop("SYNTH_SIGNING_KEY", None)
    os.environ["XDG_CONFIG_HOME"] = str(tmp_path_factory.mktemp("config"))
    return os.environ["XDG_CONFIG_HOME"]
