"""The SQL target: tables ``deal_scores`` and ``rep_risk`` keyed by ``(as_of, id)``, and
``batch_runs`` (one manifest per as-of), in any database SQLAlchemy reaches.

Each chunk is inserted into a staging table together with its record in one transaction,
so a killed job leaves whole chunks or none.  :meth:`SqlSink.commit` then replaces the
as-of's rows of every output table with the staged ones, writes the manifest and clears
the job's staging rows, all in ONE transaction: a re-run for the same as-of replaces its
rows and never adds a second copy, and readers see the old run or the new one.

Internal tables (``spm_batch_jobs``, ``spm_batch_chunks``, ``spm_batch_staging_*``) hold
an unfinished job; they are empty once it commits.
"""

from __future__ import annotations

import importlib.util
import json

import pandas as pd

from spm_ml.batch.sinks import TABLE_KEYS, ChunkRecord, JobState, check_columns
from spm_ml.errors import SpmMlError

RUNS = "batch_runs"
JOBS = "spm_batch_jobs"
CHUNKS = "spm_batch_chunks"
STAGING = "spm_batch_staging_"

POSTGRES_DRIVERS = ("psycopg", "psycopg2")
"""Drivers tried, in order, for a plain ``postgresql://`` URL (no ``+driver``)."""


def sql_engine(url: str):
    """An engine for ``url`` as a user types it: ``postgresql://user@host:port/db`` gets
    whichever PostgreSQL driver is installed (psycopg 3, the project's, else psycopg2)."""
    import sqlalchemy as sa

    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as err:
        raise SpmMlError(f"--out {url!r} is not a SQLAlchemy URL: {err}") from err
    if parsed.drivername == "postgresql":
        installed = [d for d in POSTGRES_DRIVERS if importlib.util.find_spec(d) is not None]
        if not installed:
            raise SpmMlError("no PostgreSQL driver is installed: pip install 'psycopg[binary]'")
        parsed = parsed.set(drivername=f"postgresql+{installed[0]}")
    try:
        return sa.create_engine(parsed)
    except Exception as err:  # an unknown dialect or a missing driver
        raise SpmMlError(f"cannot use --out {redact(url)}: {err}") from err


def redact(url: str) -> str:
    """The URL without its password, for messages and the manifest."""
    import sqlalchemy as sa

    return sa.make_url(url).render_as_string(hide_password=True)


def _column_type(series: pd.Series):
    """The SQL type for a column of the batch's frames (doubles stay doubles: 1e-9 parity)."""
    import sqlalchemy as sa

    kind = series.dtype.kind
    if kind == "f":
        return sa.Double()
    if kind in "iu":
        return sa.BigInteger()
    if kind == "b":
        return sa.Boolean()
    if kind == "M":
        return sa.DateTime()
    return sa.Text()


def _records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, missing values as NULL."""
    plain = frame.astype(object)
    return plain.where(frame.notna().to_numpy(), None).to_dict("records")


class SqlSink:
    """Output tables in a SQL database (see the module docstring)."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self.url = url
        self.description = redact(url)
        self.engine = sql_engine(url)
        self.metadata = sa.MetaData()
        self.runs = sa.Table(
            RUNS,
            self.metadata,
            sa.Column("as_of", sa.DateTime, primary_key=True),
            sa.Column("finished_at", sa.DateTime, nullable=False),
            sa.Column("manifest", sa.Text, nullable=False),
        )
        self.jobs = sa.Table(
            JOBS,
            self.metadata,
            sa.Column("as_of", sa.DateTime, primary_key=True),
            sa.Column("state", sa.Text, nullable=False),
        )
        self.chunks = sa.Table(
            CHUNKS,
            self.metadata,
            sa.Column("as_of", sa.DateTime, primary_key=True),
            sa.Column("table_name", sa.String(64), primary_key=True),
            sa.Column("chunk", sa.Integer, primary_key=True),
            sa.Column("record", sa.Text, nullable=False),
        )
        self.as_of: pd.Timestamp | None = None

    def check(self) -> None:
        import sqlalchemy as sa

        try:
            with self.engine.connect():
                pass
        except sa.exc.SQLAlchemyError as err:
            raise SpmMlError(f"--out {self.description} is unreachable: {err}") from err

    def start(self, state: JobState, resume: bool) -> dict[tuple[str, int], ChunkRecord]:
        self.as_of = state.as_of.to_pydatetime()
        self.metadata.create_all(self.engine, tables=[self.runs, self.jobs, self.chunks])
        with self.engine.begin() as conn:
            pending = conn.execute(
                self.jobs.select().where(self.jobs.c.as_of == self.as_of)
            ).first()
            if resume and pending is not None:
                state.check_resumable(JobState.from_json(pending.state), self.description)
                rows = conn.execute(
                    self.chunks.select().where(self.chunks.c.as_of == self.as_of)
                ).all()
                return {(r.table_name, r.chunk): ChunkRecord.from_json(r.record) for r in rows}
            self._forget(conn)
            conn.execute(self.jobs.insert().values(as_of=self.as_of, state=state.to_json()))
        return {}

    def _forget(self, conn) -> None:
        """Drop this as-of's unfinished job: its state, chunk records and staged rows."""
        import sqlalchemy as sa

        present = set(sa.inspect(conn).get_table_names())
        for table in TABLE_KEYS:
            if STAGING + table in present:
                staging = self._table(STAGING + table, conn)
                conn.execute(staging.delete().where(staging.c.as_of == self.as_of))
        conn.execute(self.chunks.delete().where(self.chunks.c.as_of == self.as_of))
        conn.execute(self.jobs.delete().where(self.jobs.c.as_of == self.as_of))

    def _table(self, name: str, conn):
        import sqlalchemy as sa

        if name in self.metadata.tables:
            return self.metadata.tables[name]
        return sa.Table(name, self.metadata, autoload_with=conn)

    def _output_tables(self, table: str, rows: pd.DataFrame, conn):
        """The output table and its staging twin, created from ``rows``' columns if absent;
        an existing table must have exactly these columns."""
        import sqlalchemy as sa

        present = set(sa.inspect(conn).get_table_names())
        out = []
        for name in (table, STAGING + table):
            if name in present:
                existing = self._table(name, conn)
                check_columns(
                    name, [c.name for c in existing.columns], list(rows.columns), self.description
                )
                out.append(existing)
                continue
            columns = [
                sa.Column(c, _column_type(rows[c]), primary_key=c in ("as_of", TABLE_KEYS[table]))
                for c in rows.columns
            ]
            created = sa.Table(name, self.metadata, *columns)
            created.create(conn)
            out.append(created)
        return out

    def write_chunk(self, record: ChunkRecord, rows: pd.DataFrame) -> None:
        with self.engine.begin() as conn:  # the chunk's rows and its record: one transaction
            _, staging = self._output_tables(record.table, rows, conn)
            if len(rows):
                conn.execute(staging.insert(), _records(rows))
            conn.execute(
                self.chunks.insert().values(
                    as_of=self.as_of,
                    table_name=record.table,
                    chunk=record.chunk,
                    record=record.to_json(),
                )
            )

    def commit(self, records: list[ChunkRecord], manifest: dict) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as conn:  # ONE transaction: the as-of's rows, replaced
            present = set(sa.inspect(conn).get_table_names())
            for table in TABLE_KEYS:
                if table not in present:
                    continue
                target = self._table(table, conn)
                conn.execute(target.delete().where(target.c.as_of == self.as_of))
                if STAGING + table not in present:
                    continue
                staging = self._table(STAGING + table, conn)
                names = [c.name for c in target.columns]
                staged = sa.select(*[staging.c[n] for n in names]).where(
                    staging.c.as_of == self.as_of
                )
                conn.execute(target.insert().from_select(names, staged))
            self._forget(conn)
            conn.execute(self.runs.delete().where(self.runs.c.as_of == self.as_of))
            conn.execute(
                self.runs.insert().values(
                    as_of=self.as_of,
                    finished_at=pd.Timestamp.now(tz="UTC").tz_localize(None).to_pydatetime(),
                    manifest=json.dumps(manifest, sort_keys=True),
                )
            )
        self.engine.dispose()


def read_table(url: str, table: str, as_of: pd.Timestamp | None = None) -> pd.DataFrame:
    """An output table's rows (of one as-of, if given): for tests and users' scripts."""
    import sqlalchemy as sa

    engine = sql_engine(url)
    try:
        with engine.connect() as conn:
            target = sa.Table(table, sa.MetaData(), autoload_with=conn)
            query = target.select()
            if as_of is not None:
                query = query.where(target.c.as_of == pd.Timestamp(as_of).to_pydatetime())
            return pd.read_sql(query, conn)
    finally:
        engine.dispose()
