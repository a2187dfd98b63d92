"""The job store: one SQLite file (WAL) plus a folder per job, surviving restarts.

A job folder holds ``input.bin`` (the uploaded, de-identified bundle) until the job ends and
``result.bin`` from the moment the result is complete (written as a part file, then renamed)
until it is downloaded and acknowledged or the retention period ends. Nothing else is stored:
the database has sizes, states, times, the token's name and the idempotency key.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from medview.remote.schemas import JobStatus

__all__ = ["JobStore", "new_job_id"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    idem_key TEXT,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL,
    steps INTEGER NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    input_bytes INTEGER NOT NULL DEFAULT 0,
    result_bytes INTEGER NOT NULL DEFAULT 0,
    worker TEXT NOT NULL DEFAULT '',
    completions INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(owner, idem_key) WHERE idem_key IS NOT NULL;
"""
_FIELDS = ("id", "state", "created", "updated", "progress", "message", "steps", "attempts",
           "error", "input_bytes", "result_bytes", "worker")


def _nothing(job_id: str) -> None:
    pass


def new_job_id() -> str:
    return uuid.uuid4().hex


class JobStore:
    """Jobs in ``folder/jobs.sqlite`` and ``folder/jobs/<id>/``; thread-safe."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        (self.folder / "jobs").mkdir(parents=True, exist_ok=True)
        self.path = self.folder / "jobs.sqlite"
        self._lock = threading.RLock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        cols = {r[1] for r in self._db.execute("PRAGMA table_info(jobs)")}
        if "completions" not in cols:  # a store written by an older server
            self._db.execute("ALTER TABLE jobs ADD COLUMN completions INTEGER NOT NULL "
                             "DEFAULT 0")
        self._closed = False
        #: called with a job's id after each change of its row (from the changing thread):
        #: the server's status long-polls wake on it
        self.on_change: Callable[[str], None] = _nothing

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._db.close()

    def job_dir(self, job_id: str) -> Path:
        return self.folder / "jobs" / job_id

    # -- rows ---------------------------------------------------------------------------
    def create(self, *, owner: str, idem_key: str | None, steps: int, input_bytes: int,
               job_id: str | None = None) -> tuple[str, bool]:
        """A new queued job (id ``job_id`` or a new one), or the existing one with the same
        owner and key.

        Returns
        -------
        (job id, created)
        """
        with self._lock:
            if idem_key:
                row = self._db.execute("SELECT id FROM jobs WHERE owner=? AND idem_key=?",
                                       (owner, idem_key)).fetchone()
                if row:
                    return row[0], False
            job_id = job_id or new_job_id()
            now = time.time()
            self._db.execute(
                "INSERT INTO jobs (id, owner, idem_key, state, created, updated, steps, "
                "input_bytes) VALUES (?, ?, ?, 'queued', ?, ?, ?, ?)",
                (job_id, owner, idem_key, now, now, steps, input_bytes))
            return job_id, True

    def update(self, job_id: str, *, completed: bool = False, **fields) -> None:
        """Set ``fields``; with ``completed`` also count one more completion of the job in
        the same statement (a server killed in between cannot count one twice)."""
        if not fields:
            return
        fields["updated"] = time.time()
        if fields.get("state") in ("succeeded", "failed", "cancelled"):
            fields.setdefault("finished", fields["updated"])
        cols = ", ".join(f"{k}=?" for k in fields)
        if completed:
            cols += ", completions = completions + 1"
        with self._lock:
            if self._closed:  # a job thread outliving a stopped server: the next one resumes it
                return
            self._db.execute(f"UPDATE jobs SET {cols} WHERE id=?", (*fields.values(), job_id))
        self.on_change(job_id)

    def completions(self) -> dict[str, int]:
        """job id → how many times it completed."""
        with self._lock:
            return dict(self._db.execute("SELECT id, completions FROM jobs"))

    def get(self, job_id: str, *, owner: str | None = None) -> JobStatus | None:
        sql = f"SELECT {', '.join(_FIELDS)} FROM jobs WHERE id=?"
        args: tuple = (job_id,)
        if owner is not None:
            sql += " AND owner=?"
            args += (owner,)
        with self._lock:
            if self._closed:
                return None
            row = self._db.execute(sql, args).fetchone()
        if row is None:
            return None
        d = dict(zip(_FIELDS, row, strict=True))
        steps = d["steps"] or 0
        d["step"] = 0 if d["state"] == "queued" or not steps else min(
            steps, int(d["progress"] * steps) + 1)
        return JobStatus(**d)

    def list(self, *, owner: str | None = None, states: tuple[str, ...] = ()) -> list[str]:
        sql, args = "SELECT id FROM jobs WHERE 1=1", []
        if owner is not None:
            sql += " AND owner=?"
            args.append(owner)
        if states:
            sql += f" AND state IN ({', '.join('?' * len(states))})"
            args.extend(states)
        with self._lock:
            return [r[0] for r in self._db.execute(sql + " ORDER BY created", args)]

    def finished_before(self, t: float) -> list[str]:
        with self._lock:
            return [r[0] for r in self._db.execute(
                "SELECT id FROM jobs WHERE state='succeeded' AND finished < ?", (t,))]

    def owner_of(self, job_id: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT owner FROM jobs WHERE id=?", (job_id,)).fetchone()
        return row[0] if row else None
