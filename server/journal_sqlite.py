"""The journal on an embedded SQLite file in WAL mode: one row per group commit.

Schema (format 2):

    meta(k PRIMARY KEY, v)                   format, incarnation
    log(seq INTEGER PRIMARY KEY, body BLOB)  one group commit's entries (journal_log.py)
    watchers(key, client_id, acked)          other submitters owed a task's result (rare)

Each commit is one row appended at the end of one B-tree, whatever its number of tasks: its
body holds every spec, final state, ack and attempt reservation of that commit, in order
(journal_log.py encodes them). A row is deleted once none of the tasks it names is kept any
more (the core forgot it after retention and its submitter acked it, or `prune` found it older
than any client could still ask for it); `load` replays the rows, then rewrites the live state
as a compact snapshot, so every incarnation starts from a log as small as its state.

`synchronous=NORMAL` in WAL mode syncs only at checkpoints: a commit survives the process
being killed (it is in the OS page cache) but not a power loss or kernel crash, where the last
commits may be lost (never corrupted). `synchronous=FULL` (`--journal-sync full`) syncs every
commit; see docs/durability.md for what each costs.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from swarm.server import journal_log
from swarm.server.journal_base import (
    ATTEMPT_BLOCK,
    JournalError,
    Record,
    Recovered,
    TaskRow,
)
from swarm.server.journal_log import Commit, LogIndex

FORMAT = "2"
_APPEND = "INSERT INTO log VALUES (?, ?)"
DELETE_BATCH_ROWS = 256  # dead rows deleted together
CHECKPOINT_PAGES = 400  # estimated; the WAL then stays within ~8 MB
SYNC_MODES = ("normal", "full")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS log(seq INTEGER PRIMARY KEY, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS watchers(
    key TEXT NOT NULL, client_id TEXT NOT NULL, acked INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY(key, client_id)) WITHOUT ROWID;
"""


class SqliteJournal:
    """A JournalBackend on one file; its calls (but the constructor) one thread at a time."""

    def __init__(
        self,
        path: Path | str,
        sync: str = "normal",
        *,
        compact_min_entries: int = journal_log.COMPACT_MIN_ENTRIES,
    ) -> None:
        if sync not in SYNC_MODES:
            raise ValueError(f"journal sync must be one of {SYNC_MODES}, not {sync!r}")
        self.path = str(path)
        self.sync = sync
        self._db: sqlite3.Connection | None = None
        self._seq = 1  # the next row's: rows replay in this order
        self._compact_min = compact_min_entries  # see LogIndex.needs_compaction
        self.index = LogIndex(compact_min_entries)
        self._dead: list[int] = []  # rows no longer needed, not deleted yet
        self._wal_pages = 0  # written to the WAL since the last checkpoint (an estimate)
        self.compactions = 0

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
            # One process uses the file: holding its lock for good spares the lock calls and
            # the shared-memory index of every transaction (the WAL index lives in the heap),
            # and a second orchestrator on the same state directory is refused (locked).
            db.execute("PRAGMA locking_mode=EXCLUSIVE")
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={self.sync.upper()}")
            # The WAL is truncated to this after a checkpoint, so it stays small on disk.
            db.execute("PRAGMA journal_size_limit=67108864")
            # Checkpoints are `maintain`'s, on the writer thread: a commit may be made on the
            # event loop (journal_writer.py), which must not copy the WAL nor fsync.
            db.execute("PRAGMA wal_autocheckpoint=0")
            ok = db.execute("PRAGMA quick_check").fetchone()[0]
            if ok != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {ok}")
            db.executescript(_SCHEMA)
            meta = dict(db.execute("SELECT k, v FROM meta").fetchall())
            if meta.get("format", FORMAT) != FORMAT:
                raise sqlite3.DatabaseError(f"format {meta['format']!r}, expected {FORMAT!r}")
            out = Recovered(incarnation=int(meta.get("incarnation", "0")) + 1, path=self.path)
            db.execute("BEGIN IMMEDIATE")
            tasks = self._replay()
            out.tasks = list(tasks.values())
            out.watchers = [
                (k, c, bool(a))
                for k, c, a in db.execute("SELECT key, client_id, acked FROM watchers")
            ]
            self.index.watched = bool(out.watchers)
            # The new incarnation's attempts are numbered past any the last one could send:
            # the rows returned keep the old limit (restore starts from it), the log the new.
            self._rewrite(out.tasks, ATTEMPT_BLOCK)
            db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                [("format", FORMAT), ("incarnation", str(out.incarnation))],
            )
            db.execute("COMMIT")
            return out
        except (sqlite3.DatabaseError, ValueError, OSError) as exc:
            raise self._fail(exc, "read") from None

    def _replay(self) -> dict[str, TaskRow]:
        rows = self.db.execute("SELECT body FROM log ORDER BY seq")
        return journal_log.replay(bytes(body) for (body,) in rows)

    def _rewrite(self, rows: Iterable[TaskRow], bump: int = 0) -> None:
        """Replace the whole log by a snapshot of `rows` (inside the caller's transaction),
        with unfinished tasks' attempt reservations `bump` further."""
        db = self.db
        db.execute("DELETE FROM log")
        self._dead = []
        self.index = index = LogIndex(self._compact_min)
        index.watched = self._watched_any()
        seq = 1
        for entries in journal_log.snapshot(rows, bump):
            db.execute(_APPEND, (seq, journal_log.encode(entries)))
            index.pin_snapshot(seq, entries)
            seq += 1
        index.sort_finals()
        self._seq = seq

    def _watched_any(self) -> bool:
        return self.db.execute("SELECT 1 FROM watchers LIMIT 1").fetchone() is not None

    def write(self, groups: Sequence[Sequence[Record]]) -> None:
        """One row for the commit: a single INSERT, its own transaction (one call into SQLite,
        so one release of the GIL). The rows it made dead are deleted in batches by `maintain`:
        one left behind by a crash replays to what the journal held before they died, which
        is safe, except when this commit's row was not written (everything in it died within
        it): then they go at once, or a replay would find tasks unfinished that had been
        acked. May run on the event loop (journal_writer.py): nothing here is slow."""
        seq = self._seq
        commit = self.index.add(seq, groups, time.time())
        self._dead.extend(commit.dead_rows)
        db = self.db
        try:
            if commit.watches or commit.watch_acks or commit.dead_watched:
                self._write_watched(seq, commit)  # rare: other submitters of the same ids
            elif commit.body is not None:
                blob = journal_log.encode(commit.body)
                db.execute(_APPEND, (seq, blob))
                self._wal_pages += 3 + (len(blob) >> 12)
            if commit.body is not None:
                self._seq = seq + 1
            if commit.body is None and self._dead:
                self._delete_dead()
        except (sqlite3.Error, ValueError) as exc:
            raise self._fail(exc, "written") from None

    def _write_watched(self, seq: int, commit: Commit) -> None:
        db = self.db
        db.execute("BEGIN")
        if commit.body is not None:
            db.execute(_APPEND, (seq, journal_log.encode(commit.body)))
        if commit.watches:
            db.executemany(
                "INSERT OR IGNORE INTO watchers(key, client_id) VALUES (?,?)", commit.watches
            )
        if commit.watch_acks:
            db.executemany(
                "UPDATE watchers SET acked=1 WHERE key=? AND client_id=?", commit.watch_acks
            )
        if commit.dead_watched:
            db.executemany("DELETE FROM watchers WHERE key=?", commit.dead_watched)
        db.execute("COMMIT")

    def _delete_dead(self) -> None:
        """Delete the dead rows in one statement (atomic: a spec's row never outlives the
        rows of that task's later entries by part of a batch). Row numbers are integers."""
        dead, self._dead = self._dead, []
        self._wal_pages += 1 + len(dead) // 64
        self.db.execute(f"DELETE FROM log WHERE seq IN ({','.join(map(str, dead))})")

    def prune(self, before: float) -> int:
        """Drop finished tasks older than `before` (wall clock), acked or not: by then no
        client can still ask for them (result_ttl_s + client_ttl_s). Returns how many."""
        kept = len(self.index.keys)
        commit = self.index.prune(before)
        self._dead.extend(commit.dead_rows)
        try:
            if self._dead:
                self._delete_dead()
            if commit.dead_watched:
                self.db.executemany("DELETE FROM watchers WHERE key=?", commit.dead_watched)
        except sqlite3.Error as exc:
            raise self._fail(exc, "written") from None
        return kept - len(self.index.keys)

    def maintain(self) -> None:
        """The writer thread's housekeeping: delete dead rows DELETE_BATCH_ROWS at a time,
        compact the log when it holds far more than its tasks need (journal_log.py), and
        checkpoint once the WAL has grown by about CHECKPOINT_PAGES (SQLite's own default for
        its automatic checkpoint, which is off: see `load`)."""
        db = self.db
        try:
            if len(self._dead) >= DELETE_BATCH_ROWS:
                self._delete_dead()
            if self.index.needs_compaction():
                self.compactions += 1
                db.execute("BEGIN")
                self._rewrite(list(self._replay().values()))
                db.execute("COMMIT")
                self._wal_pages = CHECKPOINT_PAGES  # a snapshot's worth: checkpoint now
            if self._wal_pages >= CHECKPOINT_PAGES:
                self._wal_pages = 0
                db.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except (sqlite3.Error, ValueError) as exc:
            raise self._fail(exc, "written") from None

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):  # closing anyway; replayed on next open
                if self._dead:
                    self._delete_dead()
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None
