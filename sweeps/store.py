"""The results store: one parquet file per finished run in a run directory, consolidated into results.parquet.

Layout for `--out results.parquet`:

    results.parquet            the consolidated view: every finished run's rows (rewritten atomically)
    results.runs/
        .lock                  fcntl lock serialising claims, run writes and consolidation across sweeps
        runs/<run_id>.parquet  the rows of one finished run (status "ok" or "diverged")
        claims/<run_id>.json   a run some live sweep is executing now (host, pid, process start time)
        failed/<run_id>.json   a run that raised (error text); retried on --resume
        discarded/             half-written or unreadable run files found at start-up, moved aside
        sweeps/<time>-<pid>.json   what each invocation planned (spec, run ids, scalefit version, commit)

Every file is written to `<name>.tmp.<host>.<pid>` in the same directory, flushed, fsync'ed and renamed
over its final name (os.replace, atomic on POSIX), so a reader or a SIGKILL never sees a partial run file.
A temp file left behind by a killed writer (in the run directory, or the consolidation's
`results.parquet.tmp.<host>.<pid>` beside results.parquet) is half-written by definition and is deleted at
start-up; a write that fails (a full disk, a read-only filesystem) deletes its own temp file and raises an
OSError naming the file it was writing. A run file that does not read back as this run's rows (wrong run_id,
row count or an unreadable footer) is moved to discarded/ and the run is redone. Claims of dead processes are
dropped, so a killed sweep resumes cleanly and two live sweeps on one directory split the work instead of
duplicating it.

results.parquet is only ever replaced by a consolidation of the run files, and never when it holds rows the
run files cannot rebuild (`foreign_rows`: a results file from elsewhere, or from a store since deleted):
the sweep then refuses unless told to `import_results` (append: its rows become run files, kept and not
redone) or to overwrite it.

The column schema is documented in docs/results_schema.md.
"""

from __future__ import annotations

import contextlib
import fcntl
import itertools
import json
import math
import os
import socket
import time
from collections.abc import Iterator, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from scaling.errors import UserError
from scaling.files import atomic_write_bytes, writing

# Column → type ("str", "int", "float"): the core schema of every row, in order (docs/results_schema.md).
CORE_COLUMNS: dict[str, str] = {
    "run_id": "str",
    "task": "str",
    "N": "int",
    "N_total": "int",
    "D": "int",
    "P_w": "float",
    "P_a": "float",
    "P_kv": "float",
    "fmt_w": "str",
    "fmt_a": "str",
    "fmt_kv": "str",
    "precision": "str",
    "optimizer": "str",
    "seed": "int",
    "flops": "float",
    "cost": "float",
    "status": "str",
    "loss": "float",
    "ptq_method": "str",
    "P_post": "float",
    "fmt_post": "str",
    "loss_post": "float",
    "delta_ptq": "float",
    "wall_time": "float",
    "tokens_per_s": "float",
    "epochs": "float",
    "scalefit_version": "str",
    "git_commit": "str",
    "config_json": "str",
    "diagnostics_json": "str",
}
# Optional columns: filled by the lm runner; NaN where a task does not report them. The last six are what
# bit-for-bit reproduction depends on besides the config (scaling.train.runtime_info).
EXTRA_COLUMNS: dict[str, str] = {
    "lr": "float",
    "divergence": "str",
    "d_model": "int",
    "n_layers": "int",
    "torch_version": "str",
    "threads": "int",
    "device": "str",
    "compute_dtype": "str",
    "cpu_capability": "str",
    "bf16_native": "bool",
}
# Extra columns of knowledge-capacity rows (task "bios"); NaN on lm rows in the consolidated view.
CAPACITY_COLUMNS: dict[str, str] = {
    "people": "int",
    "exposures": "int",
    "bits": "float",
    "bits_available": "float",
    "params_paper": "float",
    "R": "float",
    "R_total": "float",
}
SORT_KEYS = ("task", "N", "D", "precision", "optimizer", "seed", "lr", "run_id")
_META_KEY = b"scalefit"


def _arrow_type(kind: str):
    import pyarrow as pa

    return {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}[kind]


def rows_to_table(run_id: str, rows: Sequence[dict[str, Any]]):
    """Check `rows` against the schema and build a pyarrow Table (core columns first, then extras)."""
    import pyarrow as pa

    if not rows:
        raise ValueError(f"run {run_id} produced no rows")
    columns = dict(CORE_COLUMNS)
    for row in rows:
        missing = [c for c in CORE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"run {run_id}: row lacks columns {missing}")
        if row["run_id"] != run_id:
            raise ValueError(f"run {run_id}: a row has run_id {row['run_id']!r}")
        for key, value in row.items():
            if key not in columns:
                columns[key] = EXTRA_COLUMNS.get(key) or CAPACITY_COLUMNS.get(key) or _kind_of(value)
    arrays = {}
    for name, kind in columns.items():
        values = [_coerce(row.get(name), kind, name) for row in rows]
        arrays[name] = pa.array(values, type=_arrow_type(kind))
    return pa.table(arrays)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "float" if isinstance(value, float) else "int" if isinstance(value, int) else "str"


def _coerce(value: Any, kind: str, name: str) -> Any:
    if value is None:
        return math.nan if kind == "float" else None
    if kind == "float":
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"column {name} must hold true/false, got {value!r}")
        return value
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int):
            raise ValueError(f"column {name} must hold integers, got {value!r}")
        return value
    return value if isinstance(value, str) else json.dumps(value)


def atomic_write_table(path: Path, table, metadata: dict[str, Any] | None = None) -> None:
    """Write a pyarrow Table as parquet atomically, with `metadata` (JSON) under the key `scalefit`."""
    import pyarrow.parquet as pq

    if metadata is not None:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), _META_KEY: json.dumps(metadata)}
        )
    with writing(path) as tmp:
        pq.write_table(table, tmp)


def process_start(pid: int) -> str | None:
    """Start time of `pid` (clock ticks since boot, /proc/<pid>/stat field 22), None if it is not running,
    "?" if it runs but its start time cannot be read (no /proc). With the pid it names one process: a pid
    reused by a later process has another start time."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return "?"
        return "?"  # alive, start time unknown (no /proc)
    return stat.rsplit(")", 1)[1].split()[19]


def _is_live(host: str, pid: int, start: str | None) -> bool:
    """Whether the process that wrote a claim or temp file still runs (other hosts: assumed alive)."""
    if host != socket.gethostname():
        return True
    now = process_start(pid)
    return now is not None and (start is None or now in (start, "?"))


class RunStore:
    """The run directory of one results file; see the module docstring for layout and guarantees."""

    def __init__(self, out: str | Path) -> None:
        self.out = Path(out)
        if self.out.suffix != ".parquet":
            raise UserError(f"--out must name a .parquet file, got {self.out}")
        if self.out.is_dir():
            raise UserError(f"--out {self.out} is a directory; name a .parquet file")
        self.root = self.out.with_suffix(".runs")
        if self.root.exists() and not self.root.is_dir():
            raise UserError(
                f"{self.root} is a file, not a run directory: --out {self.out} keeps its runs there; "
                "move that file away or choose another --out"
            )
        self.runs_dir = self.root / "runs"
        self.claims_dir = self.root / "claims"
        self.failed_dir = self.root / "failed"
        self.discarded_dir = self.root / "discarded"
        self.sweeps_dir = self.root / "sweeps"
        self._valid: dict[str, tuple[int, int]] = {}  # run_id -> (size, mtime_ns) of files already checked
        self._frames: dict[str, tuple[tuple[int, int], Any]] = {}  # run_id -> ((size, mtime_ns), rows read)
        self._me = {"host": socket.gethostname(), "pid": os.getpid(), "start": process_start(os.getpid())}

    # -- set-up and locking -------------------------------------------------------------------------------

    def create(self) -> None:
        """Create the directories (idempotent)."""
        if not self.out.parent.is_dir():
            raise UserError(f"directory {self.out.parent} of --out does not exist")
        try:
            self.root.mkdir(exist_ok=True)
        except FileNotFoundError:  # the parent exists (checked above) but takes no new entries: /proc, /sys
            raise UserError(
                f"cannot create the run directory {self.root} of --out: {self.out.parent} exists but does "
                "not accept new files (a virtual filesystem?); choose --out on a disk"
            ) from None
        for d in (self.runs_dir, self.claims_dir, self.failed_dir, self.discarded_dir, self.sweeps_dir):
            d.mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive fcntl lock on the run directory (blocks until other sweeps release it)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "a+") as f:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)

    def exists(self) -> bool:
        """Whether this run directory already holds finished runs (a sweep wrote here before)."""
        return self.runs_dir.is_dir() and any(self.runs_dir.glob("*.parquet"))

    def require_new(self) -> None:
        """Refuse (UserError) to start a new sweep where one already wrote; --resume continues that one."""
        if self.exists():
            raise UserError(
                f"{self.root} already holds {len(self.finished())} finished run(s); pass --resume to "
                f"continue that sweep (finished runs are kept and not redone) or choose another --out"
            )

    def foreign_rows(self) -> str:
        """Why `out` holds rows its run files cannot rebuild (a consolidation would destroy them); "" when
        `out` is absent or is this store's own consolidated view (every run_id in it has a run file here, or
        one moved to discarded/ as unreadable, to be redone)."""
        import pyarrow.parquet as pq

        if not self.out.exists():
            return ""
        try:
            ids = pq.read_table(self.out, columns=["run_id"]).column(0).to_pylist()
        except Exception:  # not parquet, or no run_id column: certainly not written by a sweep
            return f"{self.out} exists and is not a results table of {self.root}"
        known = {p.stem for p in self.runs_dir.glob("*.parquet")}  # a damaged run file is redone, not foreign
        known |= {p.name.split(".", 1)[0] for p in self.discarded_dir.glob("*.parquet.*")}
        missing = set(ids) - known
        if not missing:
            return ""
        return (
            f"{self.out} holds {sum(i in missing for i in ids)} row(s) of {len(missing)} run(s) that "
            f"{self.root} does not have"
        )

    def guard_out(self, existing: str = "refuse") -> int:
        """Make sure a consolidation cannot silently replace rows `out` holds that the store cannot rebuild.

        `existing`: "refuse" raises UserError naming the file and the two ways on; "append" imports those
        rows into the store (`import_results`); "overwrite" lets the sweep replace the file. Returns the
        number of runs imported.
        """
        why = self.foreign_rows()
        if not why or existing == "overwrite":
            return 0
        if existing == "append":
            return self.import_results()
        raise UserError(
            f"{why}; the sweep would replace it. Pass --append to keep its rows and add this sweep's runs, "
            "--overwrite to replace it, or choose another --out"
        )

    def import_results(self) -> int:
        """Append: every run in `out` that the store lacks becomes a run file (rows checked against the
        schema), so it is kept in every later consolidation and not redone. Returns the runs imported."""
        import pandas as pd

        try:
            df = pd.read_parquet(self.out)
        except Exception as exc:
            raise UserError(f"cannot append to {self.out}: it does not read as parquet ({exc})") from None
        missing = [c for c in CORE_COLUMNS if c not in df.columns]
        if missing:
            raise UserError(
                f"cannot append to {self.out}: it is not a scalefit results table (no column "
                f"{', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"
            )
        self.create()
        done, imported = self.finished(), 0
        for run_id, group in df.groupby("run_id", sort=False):
            if run_id in done:
                continue
            rows = [
                {k: v for k, v in row.items() if k in CORE_COLUMNS or not _is_missing(v)}
                for row in group.astype(object).to_dict("records")
            ]
            try:
                self.write_run(str(run_id), rows)
            except ValueError as exc:
                raise UserError(f"cannot append to {self.out}: {exc}") from None
            imported += 1
        return imported

    def recover(self) -> dict[str, int]:
        """Delete half-written temp files and dead processes' claims; move unreadable run files aside.

        Returns counts {"temp_files", "stale_claims", "discarded"} of what was cleaned.
        """
        counts = {"temp_files": 0, "stale_claims": 0, "discarded": 0}
        with self.lock():
            temps = [self.out.parent.glob(f"{glob_escape(self.out.name)}.tmp.*")]  # consolidation's
            temps += [d.glob("*.tmp.*") for d in (self.root, self.runs_dir, self.claims_dir, self.failed_dir,
                                                 self.sweeps_dir)]  # fmt: skip
            for tmp in itertools.chain.from_iterable(temps):
                host, _, pid = tmp.name.rsplit(".tmp.", 1)[1].rpartition(".")
                if not pid.isdigit() or int(pid) == os.getpid() or not _is_live(host, int(pid), None):
                    tmp.unlink(missing_ok=True)
                    counts["temp_files"] += 1
            for claim in self.claims_dir.glob("*.json"):
                info = self._read_json(claim)
                if info is None or not _is_live(info["host"], info["pid"], info.get("start")):
                    claim.unlink(missing_ok=True)
                    counts["stale_claims"] += 1
            for path in self.runs_dir.glob("*.parquet"):
                if not self._check_run_file(path):
                    os.replace(path, self.discarded_dir / f"{path.name}.{int(time.time())}")
                    counts["discarded"] += 1
        return counts

    # -- runs ---------------------------------------------------------------------------------------------

    def _run_path(self, run_id: str) -> Path:
        return self.runs_dir / f"{run_id}.parquet"

    def _check_run_file(self, path: Path) -> bool:
        """A run file is valid if its parquet footer reads and its metadata names this run and row count."""
        import pyarrow.parquet as pq

        run_id = path.stem
        st = path.stat()
        if self._valid.get(run_id) == (st.st_size, st.st_mtime_ns):
            return True
        try:
            meta = pq.read_metadata(path)
            info = json.loads(meta.metadata[_META_KEY])
            ok = info["run_id"] == run_id and info["rows"] == meta.num_rows
        except Exception:
            ok = False
        if ok:
            self._valid[run_id] = (st.st_size, st.st_mtime_ns)
        return ok

    def finished(self) -> set[str]:
        """Ids of runs with a valid run file."""
        if not self.runs_dir.is_dir():
            return set()
        return {p.stem for p in self.runs_dir.glob("*.parquet") if self._check_run_file(p)}

    def claim(self, run_id: str) -> bool:
        """Mark `run_id` as being run by this process; False if it is finished or a live sweep runs it."""
        return self.try_claim(run_id) == "claimed"

    def try_claim(self, run_id: str) -> str:
        """Claim `run_id` for this process: "claimed", or why not: "finished" (a valid run file exists, e.g.
        another sweep on this directory finished it since this one started) or "running" (a live sweep
        holds its claim)."""
        with self.lock():
            if self._run_path(run_id).exists() and self._check_run_file(self._run_path(run_id)):
                return "finished"
            path = self.claims_dir / f"{run_id}.json"
            info = self._read_json(path) if path.exists() else None
            if info is not None and (info["host"], info["pid"]) != (self._me["host"], self._me["pid"]):
                if _is_live(info["host"], info["pid"], info.get("start")):
                    return "running"
            atomic_write_bytes(path, json.dumps({**self._me, "time": time.time()}).encode())
            return "claimed"

    def release(self, run_id: str) -> None:
        """Drop this process's claim on `run_id` (after a failure or when the sweep stops early)."""
        with self.lock():
            path = self.claims_dir / f"{run_id}.json"
            info = self._read_json(path) if path.exists() else None
            if info is not None and (info["host"], info["pid"]) == (self._me["host"], self._me["pid"]):
                path.unlink(missing_ok=True)

    def write_run(self, run_id: str, rows: Sequence[dict[str, Any]]) -> None:
        """Write a finished run's rows atomically, then drop its claim and any earlier failure record."""
        table = rows_to_table(run_id, rows)
        with self.lock():
            path = self._run_path(run_id)
            if path.exists() and self._check_run_file(path):
                raise RuntimeError(f"run {run_id} is already in the store; refusing to write it twice")
            atomic_write_table(path, table, {"run_id": run_id, "rows": len(rows)})
            self._check_run_file(path)
            (self.claims_dir / f"{run_id}.json").unlink(missing_ok=True)
            (self.failed_dir / f"{run_id}.json").unlink(missing_ok=True)

    def write_failure(self, run_id: str, error: str, config: dict[str, Any]) -> None:
        """Record that `run_id` raised (kept out of results; retried on --resume) and drop the claim."""
        with self.lock():
            record = {"run_id": run_id, "error": error, "config": config, "time": time.time(), **self._me}
            atomic_write_bytes(self.failed_dir / f"{run_id}.json", json.dumps(record, indent=1).encode())
            (self.claims_dir / f"{run_id}.json").unlink(missing_ok=True)

    def failures(self) -> dict[str, str]:
        """run_id → error text of runs whose last attempt raised."""
        out = {}
        for path in self.failed_dir.glob("*.json") if self.failed_dir.is_dir() else ():
            info = self._read_json(path)
            if info is not None:
                out[path.stem] = info["error"]
        return out

    def log_sweep(self, record: dict[str, Any]) -> Path:
        """Keep what an invocation planned (provenance) as sweeps/<time>-<pid>.json."""
        path = self.sweeps_dir / f"{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.json"
        atomic_write_bytes(path, json.dumps(record, indent=1, default=str).encode())
        return path

    # -- reading ------------------------------------------------------------------------------------------

    def read_runs(self):
        """All rows of the finished runs, sorted, as a pandas DataFrame."""
        import pandas as pd

        frames = [self._read_run(i) for i in sorted(self.finished())]
        if not frames:
            return pd.DataFrame({c: pd.Series(dtype=_pandas_dtype(k)) for c, k in CORE_COLUMNS.items()})
        df = pd.concat(frames, ignore_index=True)
        keys = [k for k in SORT_KEYS if k in df.columns]
        return df.sort_values(keys, kind="stable").reset_index(drop=True)

    def _read_run(self, run_id: str):
        """One run file's rows as a DataFrame, read once per file version (periodic consolidation re-reads
        only the runs that arrived since)."""
        import pyarrow.parquet as pq

        path = self._run_path(run_id)
        st = path.stat()
        key = (st.st_size, st.st_mtime_ns)
        cached = self._frames.get(run_id)
        if cached is None or cached[0] != key:
            cached = (key, pq.read_table(path).to_pandas())
            self._frames[run_id] = cached
        return cached[1]

    def consolidate(self) -> int:
        """Rewrite `results.parquet` atomically from every valid run file; returns the number of rows."""
        import pyarrow as pa

        with self.lock():
            df = self.read_runs()
            table = pa.Table.from_pandas(df, preserve_index=False)
            atomic_write_table(self.out, table, {"runs": int(df["run_id"].nunique()), "rows": len(df)})
        return len(df)

    @staticmethod
    def _read_json(path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _pandas_dtype(kind: str) -> str:
    return {"str": "object", "int": "int64", "float": "float64", "bool": "bool"}[kind]
