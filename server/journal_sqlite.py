"""The journal on an embedded SQLite file in WAL mode: one transaction per group of core calls.

Schema (format 1):

    meta(k PRIMARY KEY, v)           format, incarnation
    tasks(key PRIMARY KEY, seq, id, kind, payload, client_id, deps, priority, timeout_s,
          max_retries, labels, schedule_timeout_s, non_retryable, attempt_limit,
          state, attempt, host_id, output, error, finished_at, acked)
    watchers(key, client_id, acked)  other submitters owed a task's result (rare)

A task is one row: inserted when accepted (state 0), updated once when final, marked acked,
deleted once the core forgot it (retention) and its submitter acked it, or by `prune` once
older than any client could still ask for it. One B-tree keyed by task key (WITHOUT ROWID):
every update finds its row in one descent. `seq` keeps submission order, which recovery
relies on: a dependency is always accepted before its dependents.

`synchronous=NORMAL` in WAL mode syncs only at checkpoints: a commit survives the process
being killed (it is in the OS page cache) but not a power loss or kernel crash, where the last
commits may be lost (never corrupted). `synchronous=FULL` (`--journal-sync full`) syncs every
commit; see docs/durability.md for what each costs.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from swarm.server.journal_base import (
    ACK,
    ATTEMPT_BLOCK,
    FINAL,
    FORGET,
    LIMIT,
    SUBMIT,
    WATCH,
    JournalError,
    Record,
    Recovered,
    TaskRow,
)
from swarm.server.model import Task

FORMAT = "1"
SYNC_MODES = ("normal", "full")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tasks(
    key TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT NULL, id TEXT NOT NULL,
    kind TEXT NOT NULL, payload BLOB NOT NULL,
    client_id TEXT NOT NULL, deps TEXT, priority INTEGER NOT NULL, timeout_s REAL NOT NULL,
    max_retries INTEGER NOT NULL, labels TEXT, schedule_timeout_s REAL NOT NULL,
    non_retryable TEXT, attempt_limit INTEGER NOT NULL,
    state INTEGER NOT NULL DEFAULT 0, attempt INTEGER NOT NULL DEFAULT 0, host_id TEXT,
    output BLOB, error TEXT, finished_at REAL, acked INTEGER NOT NULL DEFAULT 0) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS watchers(
    key TEXT NOT NULL, client_id TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(key, client_id)) WITHOUT ROWID;
"""
_INSERT = (
    "INSERT OR REPLACE INTO tasks(seq, key, id, kind, payload, client_id, deps, priority,"
    " timeout_s, max_retries, labels, schedule_timeout_s, non_retryable, attempt_limit)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)
_FINAL = (
    "UPDATE tasks SET state=?, attempt=?, host_id=?, output=?, error=?, finished_at=? WHERE key=?"
)
_SELECT = (
    "SELECT key, id, kind, payload, client_id, deps, priority, timeout_s, max_retries, labels,"
    " schedule_timeout_s, non_retryable, attempt_limit, state, attempt, host_id, output, error,"
    " finished_at, acked FROM tasks ORDER BY seq"
)


def _spec_row(seq: int, t: Task) -> tuple[object, ...]:
    deps = json.dumps([d.key for d in t.deps]) if t.deps else None
    labels = json.dumps(t.labels) if t.labels else None
    nr = json.dumps(sorted(t.non_retryable)) if t.non_retryable else None
    return (
        seq, t.key, t.id, t.kind, t.payload, t.client_id, deps, t.priority, t.timeout_s,
        t.max_retries, labels, t.schedule_timeout_s, nr, t.attempt_limit,
    )  # fmt: skip


def _final_row(t: Task, wall: float) -> tuple[object, ...]:
    e = t.error
    error = None if e is None else json.dumps([int(e.reason), e.type, e.message, e.traceback])
    return (int(t.state), t.attempts, t.host_id, t.output, error, wall, t.key)


class SqliteJournal:
    """A JournalBackend on one file; every call but the constructor from the writer thread."""

    def __init__(self, path: Path | str, sync: str = "normal") -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"journal sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = str(path)
        self.sync = sync
        self._db: sqlite3.Connection | None = None
        self._seq = 0  # submission order of the rows: recovery relinks in this order
        self._watched = False  # whether any watcher row may exist: acks skip that table if not

    def _fail(self, exc: BaseException, doing: str) -> JournalError:
        return JournalError(
            f"the journal {self.path} cannot be {doing}: {exc}. Move it aside, or start "
            "afresh with --fresh (its unfinished tasks are then lost)"
        )

    @property
    def db(self) -> sqlite3.Connection:
        assert self._db is not None, "load() first"
        return self._db

    def load(self) -> Recovered:
        try:
            # check_same_thread off: opened here, then used by the writer thread alone.
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._db = db
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            # The WAL is truncated to this after a checkpoint, so it stays small on disk.
            db.execute("PRAGMA journal_size_limit=67108864")
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {ok}")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
            if meta.get("format", FORMAT) != FORMAT:
                raise sqlite3.DatabaseError(f"format {meta['format']!r}, expected {FORMAT!r}")
            out = Recovered(incarnation=int(meta.get("incarnation", "0")) + 1, path=self.path)
            db.execute("BEGIN IMMEDIATE")
            out.tasks = [_row(r) for r in db.execute(_SELECT)]
            self._seq = 1 + (db.execute("SELECT max(seq) FROM tasks").fetchone()[0] or 0)
            out.watchers = [
                (k, c, bool(a))
                for k, c, a in db.execute("SELECT key, client_id, acked FROM watchers")
            ]
            self._watched = bool(out.watchers)
            db.execute(
                "UPDATE tasks SET attempt_limit=attempt_limit+? WHERE state=0", (ATTEMPT_BLOCK,)
            )
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("incarnation", str(out.incarnation))],
            )
            db.execute("COMMIT")
            return out
        except (sqlite3.DatabaseError, ValueError, OSError) as exc:
            raise self._fail(exc, "read") from None

    def write(self, groups: Sequence[Sequence[Record]]) -> None:
        inserts: list[tuple[object, ...]] = []
        finals: list[tuple[object, ...]] = []
        acks: list[tuple[str, str]] = []
        forgets: list[tuple[str]] = []
        limits: list[tuple[int, str]] = []
        watches: list[tuple[str, str]] = []
        wall = time.time()
        for group in groups:
            for rec in group:
                kind = rec[0]
                if kind == FINAL:
                    finals.append(_final_row(rec[1], wall))
                elif kind == SUBMIT:
                    seq = self._seq
                    inserts.extend(_spec_row(seq + i, t) for i, t in enumerate(rec[1]))
                    self._seq = seq + len(rec[1])
                elif kind == ACK:
                    client = rec[1]
                    acks.extend((k, client) for k in rec[2])
                elif kind == FORGET:
                    forgets.append((rec[1],))
                elif kind == LIMIT:
                    limits.append((rec[2], rec[1]))
                elif kind == WATCH:
                    watches.append((rec[1], rec[2]))
        db = self.db
        try:
            db.execute("BEGIN")
            # In the order the core recorded them across kinds: a task is inserted before it
            # is final, final before acked, acked before forgotten.
            if inserts:
                db.executemany(_INSERT, inserts)
            if watches:
                self._watched = True
                db.executemany(
                    "INSERT OR IGNORE INTO watchers(key, client_id) VALUES (?,?)", watches
                )
            if limits:
                db.executemany("UPDATE tasks SET attempt_limit=? WHERE key=?", limits)
            if finals:
                db.executemany(_FINAL, finals)
            if acks:
                db.executemany("UPDATE tasks SET acked=1 WHERE key=? AND client_id=?", acks)
                if self._watched:
                    db.executemany("UPDATE watchers SET acked=1 WHERE key=? AND client_id=?", acks)
            if forgets:
                db.executemany(
                    "DELETE FROM tasks WHERE key=? AND state>0 AND (acked=1 OR client_id='')",
                    forgets,
                )
                if self._watched:
                    db.executemany("DELETE FROM watchers WHERE key=?", forgets)
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._fail(exc, "written") from None

    def prune(self, before: float) -> int:
        """Drop finished rows older than `before` (wall clock), acked or not: by then no client
        can still ask for them (result_ttl_s + client_ttl_s)."""
        try:
            cur = self.db.execute("DELETE FROM tasks WHERE state>0 AND finished_at<?", (before,))
            if self._watched:
                self.db.execute("DELETE FROM watchers WHERE key NOT IN (SELECT key FROM tasks)")
            return cur.rowcount
        except sqlite3.Error as exc:
            raise self._fail(exc, "written") from None

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # closing anyway; replayed on next open
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None


def _row(r: tuple[Any, ...]) -> TaskRow:
    (key, id_, kind, payload, client, deps, prio, tmo, retries, labels, sto, nr, limit,
     state, attempt, host, output, error, finished, acked) = r  # fmt: skip
    err = json.loads(str(error)) if error else None
    return TaskRow(
        key=str(key),
        id=str(id_),
        kind=str(kind),
        payload=bytes(payload),
        client_id=str(client),
        deps=tuple(json.loads(str(deps))) if deps else (),
        priority=int(prio),
        timeout_s=float(tmo),
        max_retries=int(retries),
        labels=json.loads(str(labels)) if labels else None,
        schedule_timeout_s=float(sto),
        non_retryable=frozenset(json.loads(str(nr))) if nr else frozenset(),
        attempt_limit=int(limit),
        state=int(state),
        attempt=int(attempt),
        host_id=None if host is None else str(host),
        output=bytes(output) if output is not None else b"",
        error=None if err is None else (int(err[0]), err[1], err[2], err[3]),
        finished_at=None if finished is None else float(finished),
        acked=bool(acked),
    )
