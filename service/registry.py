"""The fit registry: fits, uploaded runs tables and jobs in a SQL database (SQLAlchemy Core).

SQLite by default (`<store>/registry.sqlite`, WAL journal so several server processes share it); any
SQLAlchemy URL (`postgresql+psycopg://...`) works the same, the schema uses portable types only. Uploaded
runs tables are kept beside the database as parquet files (`<store>/runs/<id>.parquet`, written to a
temporary name and renamed), never as pickles.

Tables:
- `fits`: id, name, law, tags (JSON list), created (UTC ISO), data_hash, n_rows, n_boot, source
  ("upload" or "job"), job_id, runs_id, content (the fit.json text).
- `runs`: id (the first 16 hex digits of the file's sha256: the same table uploaded twice is stored
  once), filename, sha256, n_rows, columns (JSON), size_bytes, created.
- `jobs`: id, kind, status (queued → running → done | failed), request (JSON), idempotency_key (unique),
  created, started, finished, attempts, owner (the process running it), heartbeat (epoch seconds),
  progress, fit_id, result (JSON), error. `service.jobs` runs them exactly once.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from scaling.files import writing

__all__ = ["Registry", "utc_now"]

metadata = sa.MetaData()

fits_table = sa.Table(
    "fits",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("law", sa.String(100), nullable=False),
    sa.Column("tags", sa.Text, nullable=False, default="[]"),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("data_hash", sa.String(64), nullable=False, default=""),
    sa.Column("n_rows", sa.Integer, nullable=False, default=0),
    sa.Column("n_boot", sa.Integer, nullable=False, default=0),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("job_id", sa.String(32), nullable=True, unique=True),
    sa.Column("runs_id", sa.String(32), nullable=True),
    sa.Column("content", sa.Text, nullable=False),
)

runs_table = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("filename", sa.String(300), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("n_rows", sa.Integer, nullable=False),
    sa.Column("columns", sa.Text, nullable=False),
    sa.Column("size_bytes", sa.Integer, nullable=False),
    sa.Column("created", sa.String(32), nullable=False),
)

jobs_table = sa.Table(
    "jobs",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("request", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=True, unique=True),
    sa.Column("created", sa.String(32), nullable=False),
    sa.Column("started", sa.String(32), nullable=True),
    sa.Column("finished", sa.String(32), nullable=True),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("owner", sa.String(200), nullable=True),
    sa.Column("heartbeat", sa.Float, nullable=True),
    sa.Column("progress", sa.Text, nullable=False, default=""),
    sa.Column("fit_id", sa.String(32), nullable=True),
    sa.Column("result", sa.Text, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
)


class _TakenOver(Exception):
    """Another process owns the job now: roll back what this one was about to write."""


_FIT_INFO = [c for c in fits_table.c if c.name != "content"]
_FIT_EXISTS = sa.text(f"SELECT 1 FROM {fits_table.name} WHERE id = :id")
"""The columns of a fit's registry row without its fit.json content."""


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string with milliseconds (sorts as text)."""
    t = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + f".{int(t % 1 * 1000):03d}Z"


def new_id() -> str:
    """A random 12-hex-digit id."""
    return secrets.token_hex(6)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cur = dbapi_connection.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _decode(row: Mapping[str, Any], *json_fields: str) -> dict[str, Any]:
    out = dict(row)
    for f in json_fields:
        if out.get(f) is not None:
            out[f] = json.loads(out[f])
    return out


class Registry:
    """The store: a database (fits, runs, jobs) and the directory of runs tables beside it."""

    def __init__(self, store: str | Path, db_url: str | None = None) -> None:
        self.store = Path(store)
        self.runs_dir = self.store / "runs"
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        self.url = db_url or f"sqlite:///{(self.store / 'registry.sqlite').resolve()}"
        sqlite = self.url.startswith("sqlite")
        self.engine: Engine = sa.create_engine(
            self.url,
            connect_args={"check_same_thread": False, "timeout": 10} if sqlite else {},
            pool_pre_ping=not sqlite,
        )
        if sqlite:
            event.listen(self.engine, "connect", _sqlite_pragmas)
        metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # ---------------------------------------------------------------- fits
    def add_fit(
        self,
        content: Mapping[str, Any],
        *,
        name: str,
        law: str,
        tags: Iterable[str] = (),
        data_hash: str = "",
        n_rows: int = 0,
        n_boot: int = 0,
        source: str = "upload",
        job_id: str | None = None,
        runs_id: str | None = None,
        conn: Connection | None = None,
    ) -> dict[str, Any]:
        """Store a fit (its fit.json `content`) and return its registry row (without the content)."""
        row = {
            "id": new_id(),
            "name": name,
            "law": law,
            "tags": json.dumps(list(tags)),
            "created": utc_now(),
            "data_hash": data_hash,
            "n_rows": int(n_rows),
            "n_boot": int(n_boot),
            "source": source,
            "job_id": job_id,
            "runs_id": runs_id,
            "content": json.dumps(content),
        }
        if conn is None:
            with self.engine.begin() as c:
                c.execute(fits_table.insert().values(**row))
        else:
            conn.execute(fits_table.insert().values(**row))
        row.pop("content")
        return _decode(row, "tags")

    def list_fits(self, law: str | None = None, tag: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(*_FIT_INFO).order_by(fits_table.c.created.desc(), fits_table.c.id)
        if law is not None:
            q = q.where(fits_table.c.law == law)
        with self.engine.connect() as c:
            rows = [_decode(r._mapping, "tags") for r in c.execute(q)]
        return [r for r in rows if tag is None or tag in r["tags"]]

    def get_fit(self, fit_id: str, content: bool = True) -> dict[str, Any] | None:
        cols = fits_table.c if content else _FIT_INFO
        with self.engine.connect() as c:
            r = c.execute(sa.select(*cols).where(fits_table.c.id == fit_id)).first()
        return None if r is None else _decode(r._mapping, "tags", "content")

    def fit_exists(self, fit_id: str) -> bool:
        """Whether the fit is stored (asked on every predict of a cached fit: one plain SELECT, about
        half the time of the same query built as an expression)."""
        with self.engine.connect() as c:
            return c.execute(_FIT_EXISTS, {"id": fit_id}).first() is not None

    def delete_fit(self, fit_id: str) -> bool:
        with self.engine.begin() as c:
            return c.execute(fits_table.delete().where(fits_table.c.id == fit_id)).rowcount == 1

    # ---------------------------------------------------------------- runs tables
    def runs_path(self, runs_id: str) -> Path:
        return self.runs_dir / f"{runs_id}.parquet"

    def add_runs(
        self, df: Any, *, filename: str, sha256: str, size_bytes: int
    ) -> tuple[dict[str, Any], bool]:
        """Store a runs table as parquet (atomically) unless the same file is stored; returns (row, new)."""
        runs_id = sha256[:16]
        existing = self.get_runs(runs_id)
        if existing is not None and self.runs_path(runs_id).is_file():
            return existing, False
        path = self.runs_path(runs_id)
        with writing(path, tag=new_id()) as target:  # a tag per request: two threads may write one path
            df.to_parquet(target, index=False)
        row = {
            "id": runs_id,
            "filename": filename,
            "sha256": sha256,
            "n_rows": len(df),
            "columns": json.dumps([str(c) for c in df.columns]),
            "size_bytes": int(size_bytes),
            "created": utc_now(),
        }
        with self.engine.begin() as c:
            if existing is None:
                c.execute(runs_table.insert().values(**row))
        return _decode(row, "columns"), existing is None

    def get_runs(self, runs_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(runs_table).where(runs_table.c.id == runs_id)).first()
        return None if r is None else _decode(r._mapping, "columns")

    def list_runs(self) -> list[dict[str, Any]]:
        with self.engine.connect() as c:
            rows = c.execute(sa.select(runs_table).order_by(runs_table.c.created.desc()))
            return [_decode(r._mapping, "columns") for r in rows]

    # ---------------------------------------------------------------- jobs
    def add_job(
        self, kind: str, request: Mapping[str, Any], idempotency_key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Queue a job; with an idempotency key already used, return that job instead. (row, new)."""
        if idempotency_key is not None:
            existing = self.get_job_by_key(idempotency_key)
            if existing is not None:
                return existing, False
        row = {
            "id": new_id(),
            "kind": kind,
            "status": "queued",
            "request": json.dumps(request),
            "idempotency_key": idempotency_key,
            "created": utc_now(),
            "attempts": 0,
            "progress": "queued",
        }
        try:
            with self.engine.begin() as c:
                c.execute(jobs_table.insert().values(**row))
        except sa.exc.IntegrityError:  # the same key submitted concurrently: the first one wins
            existing = self.get_job_by_key(idempotency_key) if idempotency_key else None
            if existing is None:
                raise
            return existing, False
        job = self.get_job(row["id"])
        assert job is not None
        return job, True

    def get_job(self, job_id: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(jobs_table).where(jobs_table.c.id == job_id)).first()
        return None if r is None else _decode(r._mapping, "request", "result")

    def get_job_by_key(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(sa.select(jobs_table).where(jobs_table.c.idempotency_key == key)).first()
        return None if r is None else _decode(r._mapping, "request", "result")

    def list_jobs(self, status: str | None = None) -> list[dict[str, Any]]:
        q = sa.select(jobs_table).order_by(jobs_table.c.created.desc(), jobs_table.c.id)
        if status is not None:
            q = q.where(jobs_table.c.status == status)
        with self.engine.connect() as c:
            return [_decode(r._mapping, "request", "result") for r in c.execute(q)]

    def count_jobs(self) -> dict[str, int]:
        q = sa.select(jobs_table.c.status, sa.func.count()).group_by(jobs_table.c.status)
        with self.engine.connect() as c:
            return {status: int(n) for status, n in c.execute(q)}

    def claim_job(self, job_id: str, owner: str) -> bool:
        """queued → running for `owner`, only if it is still queued (one claimant wins)."""
        now = time.time()
        q = (
            jobs_table.update()
            .where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
            .values(
                status="running",
                owner=owner,
                heartbeat=now,
                started=utc_now(),
                attempts=jobs_table.c.attempts + 1,
            )
        )
        with self.engine.begin() as c:
            return c.execute(q).rowcount == 1

    def next_queued(self) -> list[str]:
        q = sa.select(jobs_table.c.id).where(jobs_table.c.status == "queued").order_by(jobs_table.c.created)
        with self.engine.connect() as c:
            return [r[0] for r in c.execute(q)]

    def running_jobs(self) -> list[dict[str, Any]]:
        q = sa.select(jobs_table.c.id, jobs_table.c.owner, jobs_table.c.heartbeat, jobs_table.c.attempts)
        with self.engine.connect() as c:
            return [dict(r._mapping) for r in c.execute(q.where(jobs_table.c.status == "running"))]

    def requeue(self, job_id: str, owner: str | None, note: str) -> bool:
        """running (by `owner`) → queued: the process running it is gone."""
        q = jobs_table.update().where(
            jobs_table.c.id == job_id, jobs_table.c.status == "running", jobs_table.c.owner == owner
        )
        with self.engine.begin() as c:
            return c.execute(q.values(status="queued", owner=None, progress=note)).rowcount == 1

    def heartbeat(self, job_id: str, owner: str, progress: str | None = None) -> bool:
        values: dict[str, Any] = {"heartbeat": time.time()}
        if progress is not None:
            values["progress"] = progress
        q = jobs_table.update().where(
            jobs_table.c.id == job_id, jobs_table.c.owner == owner, jobs_table.c.status == "running"
        )
        with self.engine.begin() as c:
            return c.execute(q.values(**values)).rowcount == 1

    def finish_job(
        self,
        job_id: str,
        owner: str,
        *,
        status: str,
        progress: str,
        fit: Mapping[str, Any] | None = None,
        result: Any = None,
        error: str | None = None,
    ) -> bool:
        """running → done/failed in one transaction with the fit it produced (`fit`: `add_fit` keyword
        arguments). Only the owner can finish a job; if another process took it over meanwhile nothing is
        written (False), so a job's result is stored exactly once."""
        values: dict[str, Any] = {
            "status": status,
            "finished": utc_now(),
            "progress": progress,
            "error": error,
            "result": None if result is None else json.dumps(result),
        }
        q = jobs_table.update().where(
            jobs_table.c.id == job_id, jobs_table.c.owner == owner, jobs_table.c.status == "running"
        )
        try:
            with self.engine.begin() as c:
                if c.execute(q.values(**values)).rowcount != 1:
                    raise _TakenOver
                if fit is not None:
                    row = self.add_fit(conn=c, job_id=job_id, source="job", **fit)
                    c.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(fit_id=row["id"]))
        except _TakenOver:
            return False
        return True

    def fail_job(self, job_id: str, error: str) -> None:
        """Mark a queued job failed without running it (it cannot be run)."""
        q = jobs_table.update().where(jobs_table.c.id == job_id, jobs_table.c.status == "queued")
        with self.engine.begin() as c:
            c.execute(q.values(status="failed", finished=utc_now(), error=error, progress="failed"))
