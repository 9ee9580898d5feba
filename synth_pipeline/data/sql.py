"""SQL sources: a query run through SQLAlchemy on the URL held by a named environment variable (so
no credential is ever written into a catalogue, a run config or a manifest). Every failure is one
BadInput line naming the source; the URL itself is never printed."""

import os

import pandas as pd

from synth_pipeline.errors import BadInput


def _url(connection: str, where: str) -> str:
    url = os.environ.get(connection, "").strip()
    if not url:
        raise BadInput(f"{where}: connection: environment variable {connection} is not set "
                       "(it must hold a SQLAlchemy URL, e.g. postgresql+psycopg2://user@host/db)")
    return url


def _run(query: str, connection: str, where: str, fn):
    import sqlalchemy as sa

    url = _url(connection, where)
    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError, ValueError) as e:
        kind = type(e).__name__
        raise BadInput(f"{where}: connection: ${connection} is not a usable SQLAlchemy URL ({kind})") from None
    try:
        with engine.connect() as conn:
            return fn(conn, sa)
    except sa.exc.SQLAlchemyError as e:
        first = str(getattr(e, "orig", None) or e).strip().splitlines()
        raise BadInput(f"{where}: sql: {first[0] if first else type(e).__name__}") from None
    finally:
        engine.dispose()


def read_sql(query: str, connection: str, *, where: str = "sql") -> pd.DataFrame:
    """The query's rows as a DataFrame (numeric SQL types as floats/ints). Give the query an ORDER BY:
    the rows' hash in the manifest depends on their order."""
    df = _run(query, connection, where, lambda conn, sa: pd.read_sql_query(sa.text(query), conn))
    if df.shape[0] == 0 or df.shape[1] == 0:
        raise BadInput(f"{where}: sql: the query returned no rows")
    return df


def sql_columns(query: str, connection: str, *, where: str = "sql") -> list[str]:
    """The query's column names without reading its rows (the query as a subquery, LIMIT 0)."""
    inner = query.strip().rstrip(";")
    return _run(query, connection, where,
                lambda conn, sa: list(conn.execute(sa.text(f"SELECT * FROM ({inner}) AS q LIMIT 0")).keys()))


def sql_input_differences(inp: dict) -> list[str]:
    """`reproduce`'s input check for a SQL source: the query cannot run now, or the rows it returns
    now are not those the release was made from (the manifest's `input` block, from input_record)."""
    from synth_pipeline.hashing import frame_sha256

    try:
        sha = frame_sha256(read_sql(inp["sql"], inp["connection"], where="input"))
    except BadInput as e:
        return [f"{e} (cannot re-read the SQL source)"]
    if sha != inp["sha256"]:
        return [f"input sql: the rows read now hash to {sha[:12]}…, not the release's {inp['sha256'][:12]}… "
                "(the table changed since)"]
    return []
