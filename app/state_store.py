"""The state every worker process shares: a small SQLite database in the cache
directory (``state.sqlite3``).

``convzoo serve --workers N`` runs N processes, each with its own memory; what
must read the same from all of them lives here: speed jobs (any worker answers
``GET /api/jobs/{id}``), leases (one speed measurement at a time, one warm-up
for the whole server) and the warm-up's progress. SQLite rather than a
protocol of our own: its transactions (``BEGIN IMMEDIATE`` takes the write lock
before reading) make "check, then claim" atomic across processes, and WAL mode
lets readers run beside a writer. Web workers behind a load balancer on other
machines share it too when they share the cache directory on a file system
with working POSIX locks.

A lease is a named claim with an owner and an expiry; its holder renews it
while it works (a heartbeat). A holder that dies stops renewing, the lease
expires, and another worker may take it: nothing stays locked after a crash.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS documents (
    kind TEXT NOT NULL, id TEXT NOT NULL, body TEXT NOT NULL, updated REAL NOT NULL,
    PRIMARY KEY (kind, id));
CREATE INDEX IF NOT EXISTS documents_by_age ON documents (kind, updated);
CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY, owner TEXT NOT NULL, value TEXT, expires REAL NOT NULL);
"""


def new_owner() -> str:
    """A lease owner name unique to this process and call: host, pid, random."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class StateStore:
    """JSON documents by (kind, id) and leases by name, in one SQLite file.

    Every method opens its own short transaction on a per-thread connection
    (sqlite3 connections must not cross threads); ``busy_timeout`` makes a
    writer wait for another process's write instead of failing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        with self._transaction() as db:
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    db.execute(statement)

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None or self._local.pid != os.getpid():
            connection = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection, self._local.pid = connection, os.getpid()
        return connection

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: the database's write lock is taken before
        anything is read, so what a caller checks still holds when it writes."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads made inside see one state of the database (a WAL read
        transaction): a document and a lease read together cannot straddle
        another thread's write of both."""
        db = self._connection()
        db.execute("BEGIN")
        try:
            yield
        finally:
            db.execute("COMMIT")

    # -- documents -------------------------------------------------------------

    def put(self, kind: str, doc_id: str, body: dict[str, Any]) -> None:
        with self._transaction() as db:
            _put(db, kind, doc_id, body)

    def get(self, kind: str, doc_id: str) -> dict[str, Any] | None:
        row = self._connection().execute("SELECT body FROM documents WHERE kind = ? AND id = ?",
                                          (kind, doc_id)).fetchone()
        return None if row is None else json.loads(row[0])

    def newest(self, kind: str, limit: int) -> list[dict[str, Any]]:
        rows = self._connection().execute(
            "SELECT body FROM documents WHERE kind = ? ORDER BY updated DESC LIMIT ?", (kind, limit)).fetchall()
        return [json.loads(body) for body, in rows]

    def keep_newest(self, kind: str, count: int) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM documents WHERE kind = ? AND id NOT IN "
                       "(SELECT id FROM documents WHERE kind = ? ORDER BY updated DESC LIMIT ?)",
                       (kind, kind, count))

    # -- leases ----------------------------------------------------------------

    def claim(self, name: str, owner: str, ttl_s: float, value: str | None = None,
              then: tuple[str, str, dict[str, Any]] | None = None) -> str | None:
        """Take lease ``name`` for ``owner`` unless someone else holds it unexpired.

        Returns None on success, else the current holder's ``value`` (e.g. the
        job it runs). ``then`` = (kind, id, body): a document written in the
        same transaction, so no other process sees the lease without it."""
        now = time.time()
        with self._transaction() as db:
            row = db.execute("SELECT owner, value, expires FROM leases WHERE name = ?", (name,)).fetchone()
            if row is not None and row[0] != owner and row[2] > now:
                return row[1] or row[0]
            db.execute("INSERT OR REPLACE INTO leases (name, owner, value, expires) VALUES (?, ?, ?, ?)",
                       (name, owner, value, now + ttl_s))
            if then is not None:
                _put(db, *then)
        return None

    def renew(self, name: str, owner: str, ttl_s: float) -> bool:
        """Extend ``owner``'s lease; False if it lost it (expired and taken)."""
        with self._transaction() as db:
            cursor = db.execute("UPDATE leases SET expires = ? WHERE name = ? AND owner = ?",
                                (time.time() + ttl_s, name, owner))
            return cursor.rowcount == 1

    def release(self, name: str, owner: str, then: tuple[str, str, dict[str, Any]] | None = None) -> None:
        """Hand lease ``name`` back; ``then`` as for ``claim`` (e.g. the job's final state)."""
        with self._transaction() as db:
            db.execute("DELETE FROM leases WHERE name = ? AND owner = ?", (name, owner))
            if then is not None:
                _put(db, *then)

    def holder(self, name: str) -> tuple[str, str | None] | None:
        """(owner, value) of the unexpired lease ``name``, or None."""
        row = self._connection().execute("SELECT owner, value FROM leases WHERE name = ? AND expires > ?",
                                         (name, time.time())).fetchone()
        return None if row is None else (row[0], row[1])


def _put(db: sqlite3.Connection, kind: str, doc_id: str, body: dict[str, Any]) -> None:
    db.execute("INSERT OR REPLACE INTO documents (kind, id, body, updated) VALUES (?, ?, ?, ?)",
               (kind, doc_id, json.dumps(body), time.time()))


def write_atomically(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that no reader sees half a file and two
    writers (threads or processes) never interleave: each writes its own
    temporary file in the same directory, then renames it over ``path``
    (``os.replace`` is atomic on POSIX; the last writer wins whole)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Heartbeat:
    """Renews a lease every ``period_s`` in a daemon thread while work runs,
    and calls ``tick`` each time (e.g. to poll a cancel flag other workers set)."""

    def __init__(self, store: StateStore, name: str, owner: str, ttl_s: float, period_s: float,
                 tick=None) -> None:
        self._store, self._name, self._owner, self._ttl_s, self._period_s = store, name, owner, ttl_s, period_s
        self._tick = tick
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"convzoo-lease-{name}", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._period_s):
            try:
                self._store.renew(self._name, self._owner, self._ttl_s)
                if self._tick is not None:
                    self._tick()
            except sqlite3.Error:  # a locked or busy database this time; the next beat retries
                continue
