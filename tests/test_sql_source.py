"""SQL sources, for real: a catalogue entry with `sql:` reads a bundled table loaded into the
PostgreSQL test server (`make services`, 127.0.0.1:55432), publishes, and its manifest records the query
and the hash of the rows read, so `reproduce` can tell whether the table changed since."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from synth_pipeline.catalogue import load_catalogue
from synth_pipeline.data import load_dataset
from synth_pipeline.data.sql import read_sql
from synth_pipeline.errors import BadInput
from synth_pipeline.hashing import frame_sha256
from synth_pipeline.reproduce import plan

PG_URL = os.environ.get("SYNTH_TEST_PG_URL", "postgresql://postgres@127.0.0.1:55432/dagster_test")
URL_ENV = "SYNTH_TEST_WARD_DB"  # the catalogue names this variable, never the URL


@pytest.fixture
def actg_table():
    """ACTG175 as a table on the test server (dropped afterwards); yields (engine, table name)."""
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg2://", 1))
    try:
        engine.connect().close()
    except sa.exc.OperationalError as e:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL not reachable at {PG_URL} ({e}); `make services` starts it")
        pytest.skip(f"PostgreSQL not reachable at {PG_URL}; run `make services`")
    table = f"actg_{uuid.uuid4().hex[:8]}"
    load_dataset("actg175").raw.to_sql(table, engine, index=True, index_label="rid")
    yield engine, table
    with engine.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS {table}"))
    engine.dispose()


def _catalogue(tmp_path: Path, table: str, **extra: str) -> tuple[Path, str]:
    query = f'SELECT * FROM {table} WHERE cens IS NOT NULL ORDER BY rid'
    more = "".join(f"\n    {k}: {v}" for k, v in extra.items())
    p = tmp_path / "catalogue.yaml"
    p.write_text(f"""datasets:
  - name: gbsg2
    path: gbsg2
  - name: ward_sql
    sql: "{query}"
    connection: {URL_ENV}
    target: cens
    generator: gaussian_copula
    drop: [days, rid]
    id_columns: [pidnum, "Unnamed: 0"]
    link_attacks: 300
    thresholds: {{dcr_share_max: 0.65}}{more}
""")
    return p, query


def test_sql_entry_publishes_and_reproduce_sees_a_changed_table(tmp_path, actg_table, monkeypatch):
    import sqlalchemy as sa

    engine, table = actg_table
    monkeypatch.setenv(URL_ENV, str(engine.url.render_as_string(hide_password=False)))
    cat, query = _catalogue(tmp_path, table)
    env = {k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"}
    proc = subprocess.run([sys.executable, "-m", "synth_pipeline.cli", "release", "--catalogue", str(cat),
                           "--dataset", "ward_sql", "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert "deliberate override: dcr_share_max = 0.65" in proc.stderr
    rel = Path(proc.stdout.split("published ")[1].strip())
    assert rel.parent.name == "ward_sql"
    manifest = json.loads((rel / "manifest.json").read_text())
    inp = manifest["input"]
    assert inp["sql"] == query and inp["connection"] == URL_ENV and "path" not in inp
    assert inp["sha256"] == frame_sha256(read_sql(query, URL_ENV)) and inp["rows"] == 2139
    assert [o["threshold"] for o in manifest["overrides"]] == ["dcr_share_max"]
    assert "id='overrides'" in (rel / "report.html").read_text()
    url = os.environ[URL_ENV]
    assert not any(url.encode() in p.read_bytes() for p in rel.iterdir())  # the URL is never written

    assert plan(manifest).differences == ()
    with engine.begin() as conn:
        conn.execute(sa.text(f"UPDATE {table} SET age = age + 1 WHERE rid = 7"))
    [changed] = plan(manifest).differences
    assert "input sql" in changed and "changed since" in changed
    monkeypatch.delenv(URL_ENV)
    [unreadable] = plan(manifest).differences
    assert f"environment variable {URL_ENV} is not set" in unreadable


def test_sql_entry_columns_are_checked_when_the_catalogue_loads(tmp_path, actg_table, monkeypatch):
    engine, table = actg_table
    monkeypatch.setenv(URL_ENV, str(engine.url.render_as_string(hide_password=False)))
    assert load_catalogue(_catalogue(tmp_path, table)[0]).entry("ward_sql").sql is not None
    with pytest.raises(BadInput, match="entry 'ward_sql': sensitive_columns: unknown column 'hiv_status'"):
        load_catalogue(_catalogue(tmp_path, table, sensitive_columns="[hiv_status]")[0])
    with pytest.raises(BadInput, match=r"ward_sql \(sql\): sql: .*does not exist"):
        read_sql(f"SELECT * FROM {table}_missing", URL_ENV, where="ward_sql (sql)")
