"""The journal as a log of group commits: one blob row per commit, and which rows still matter.

A row per task (insert at submit, update when final, update on ack) costs SQLite ~5-8 µs of
CPU per statement, ~22 µs per task in all, most of the journal's cost. So a backend stores
each group commit as one row: a body holding every entry of that commit in order, encoded with
`marshal` (C speed both ways; only str, bytes, int, float, None, lists, tuples, dicts and
frozensets). Entries (`E_*`), each naming its task by key:

    (E_SPEC, key, id, kind, payload, client_id, deps, priority, timeout_s, max_retries,
     labels, schedule_timeout_s, non_retryable, attempt_limit)   accepted (or restored)
    (E_FINAL, key, state, attempts, host_id, output, error, finished_at)   (attempts made)
    (E_ACK, client_id, [key, ...])                               its submitter acked these
    (E_LIMIT, key, attempt_limit)                                attempts reserved further

`replay` folds rows, in commit order, into the tasks they describe (a spec replaces any
earlier task of its key). `LogIndex` is the writer's memory of which rows each kept task's
entries are in: a task dies when the core forgot it after retention once acknowledged (or
when it is older than any client could still ask for it, `prune`), and a row is deleted once
no live task has an entry in it, a dead task's SPEC row before the rows of its later entries
(so a replay never finds a task it dropped unfinished). A commit whose tasks all died within
it is not written at all. When the kept rows hold many times more entries than live tasks
need (a long-running task pinning an old row), the backend rewrites the live state as a
snapshot (`snapshot`).
Nothing here does I/O; journal_sqlite.py keeps the rows.
"""

from __future__ import annotations

import marshal
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from swarm.server.journal_base import ACK, FINAL, FORGET, LIMIT, SUBMIT, WATCH, Record, TaskRow

E_SPEC, E_FINAL, E_ACK, E_LIMIT = 1, 2, 3, 4
MARSHAL_VERSION = 4  # stable since Python 3.4; every later Python reads it
SNAPSHOT_ROW_TASKS = 10_000  # tasks per row of a snapshot
# Rewrite the live state once the kept rows hold more entries than this many per live task
# (each finished task needs about 3: spec, final, ack), plus COMPACT_MIN_ENTRIES.
COMPACT_FACTOR = 8
COMPACT_MIN_ENTRIES = 200_000


def encode(entries: list[tuple[Any, ...]]) -> bytes:
    return marshal.dumps(entries, MARSHAL_VERSION)


def decode(body: bytes) -> list[tuple[Any, ...]]:
    """A row's entries; ValueError when the body is not one (a corrupt or foreign row)."""
    try:
        entries = marshal.loads(body)
    except (EOFError, TypeError, ValueError) as exc:
        raise ValueError(f"a log row cannot be decoded: {exc}") from None
    if not isinstance(entries, list):
        raise ValueError("a log row is not a list of entries")
    return entries


def replay(bodies: Iterable[bytes]) -> dict[str, TaskRow]:
    """The tasks the rows describe, in submission order (dicts keep insertion order)."""
    tasks: dict[str, TaskRow] = {}
    for body in bodies:
        for e in decode(body):
            try:
                _apply(tasks, e)
            except (IndexError, TypeError, ValueError, KeyError) as exc:
                raise ValueError(f"a log entry is malformed ({exc}): {e!r:.200}") from None
    return tasks


def _apply(tasks: dict[str, TaskRow], e: tuple[Any, ...]) -> None:
    tag = e[0]
    if tag == E_SPEC:
        (_, key, id_, kind, payload, client, deps, prio, tmo, retries, labels, sto, nr,
         limit) = e  # fmt: skip
        tasks.pop(key, None)  # a resubmission after the old task was forgotten: it is newer
        tasks[key] = TaskRow(
            key, id_, kind, payload, client, tuple(deps or ()), prio, tmo, retries,
            labels or None, sto, frozenset(nr or ()), limit, 0, 0, None, b"", None, None, False,
        )  # fmt: skip
    elif tag == E_FINAL:
        row = tasks.get(e[1])
        if row is not None:
            _, _, row.state, row.attempt, row.host_id, row.output, err, row.finished_at = e
            row.error = None if err is None else (int(err[0]), err[1], err[2], err[3])
    elif tag == E_ACK:
        client = e[1]
        for key in e[2]:
            row = tasks.get(key)
            if row is not None and row.client_id == client:
                row.acked = True
    elif tag == E_LIMIT:
        row = tasks.get(e[1])
        if row is not None:
            row.attempt_limit = e[2]
    else:
        raise ValueError(f"unknown entry tag {tag!r}")


def snapshot(rows: Iterable[TaskRow], bump: int = 0) -> Iterator[list[tuple[Any, ...]]]:
    """Entries that replay to `rows` (in their order), SNAPSHOT_ROW_TASKS tasks per list, with
    each unfinished task's attempt_limit `bump` further (a new incarnation's reservation)."""
    out: list[tuple[Any, ...]] = []
    n = 0
    for r in rows:
        out.append(
            (E_SPEC, r.key, r.id, r.kind, r.payload, r.client_id, list(r.deps) or None,
             r.priority, r.timeout_s, r.max_retries, r.labels, r.schedule_timeout_s,
             r.non_retryable or None, r.attempt_limit + (0 if r.state else bump))
        )  # fmt: skip
        if r.state:
            out.append((E_FINAL, r.key, r.state, r.attempt, r.host_id, r.output, r.error,
                         r.finished_at))  # fmt: skip
            if r.acked:
                out.append((E_ACK, r.client_id, [r.key]))
        n += 1
        if n == SNAPSHOT_ROW_TASKS:
            yield out
            out, n = [], 0
    if out:
        yield out


# A kept task, as the index knows it: a list (cheaper to make than an object, once per task)
# [key, client_id, flags, finished_at (wall clock, for prune), then the seq of the row of each
# of its entries (a row may appear more than once)].
_KEY, _CLIENT, _FLAGS, _WALL, _ROWS = 0, 1, 2, 3, 4
_FINAL, _ACKED = 1, 2  # flags
_Key = list[Any]


class Commit:
    """What one group commit needs stored: its row (None: nothing in it outlives the commit),
    the rows no longer needed, and the watcher-table changes (other submitters, rare)."""

    __slots__ = ("body", "dead_rows", "dead_watched", "watch_acks", "watches")

    def __init__(self) -> None:
        self.body: list[tuple[Any, ...]] | None = None
        self.dead_rows: list[int] = []
        self.watches: list[tuple[str, str]] = []
        self.watch_acks: list[tuple[str, str]] = []
        self.dead_watched: list[tuple[str]] = []


class LogIndex:
    """Which rows hold entries of live tasks (the backend's, one thread at a time)."""

    def __init__(self, compact_min_entries: int = COMPACT_MIN_ENTRIES) -> None:
        self.compact_min_entries = compact_min_entries
        self.keys: dict[str, _Key] = {}
        self.live: dict[int, int] = {}  # row seq -> entries in it of live tasks
        self.size: dict[int, int] = {}  # row seq -> entries in it
        self.entries = 0  # entries in the rows kept
        self.watched = False  # whether any watcher row may exist: acks skip that table if not
        self._finals: deque[_Key] = deque()  # in finishing order, for prune
        # Spec row seq -> the rows of the later entries of dead tasks whose spec is in it.
        self._waiting: dict[int, list[list[int]]] = {}
        self._out = Commit()

    def needs_compaction(self) -> bool:
        return self.entries > COMPACT_FACTOR * len(self.keys) + self.compact_min_entries

    def add(self, seq: int, groups: Sequence[Sequence[Record]], wall: float) -> Commit:
        """Encode the records of one commit as row `seq` and update what is live."""
        out = self._out = Commit()
        body: list[tuple[Any, ...]] = []
        put = body.append
        keys = self.keys
        finished = self._finals.append
        self.live[seq] = 0
        pins = 0
        for group in groups:
            for rec in group:
                kind = rec[0]
                if kind == FINAL:
                    t = rec[1]
                    e = t.error
                    err = None if e is None else (int(e.reason), e.type, e.message, e.traceback)
                    put((E_FINAL, t.key, int(t.state), t.attempts, t.host_id, t.output, err, wall))
                    k = keys.get(t.key)
                    if k is not None:
                        k.append(seq)
                        pins += 1
                        k[_FLAGS] |= _FINAL
                        k[_WALL] = wall
                        finished(k)
                elif kind == SUBMIT:
                    for t in rec[1]:
                        d = t.deps
                        key = t.key
                        put(
                            (E_SPEC, key, t.id, t.kind, t.payload, t.client_id,
                             [x.key for x in d] if d else None, t.priority, t.timeout_s,
                             t.max_retries, t.labels, t.schedule_timeout_s,
                             t.non_retryable or None, t.attempt_limit)
                        )  # fmt: skip
                        old = keys.get(key)
                        if old is not None:
                            self._die(old, seq)  # replaced: the new spec is what replays
                        keys[key] = [key, t.client_id, 0, 0.0, seq]
                    pins += len(rec[1])
                elif kind == ACK:
                    client, acked = rec[1], rec[2]
                    put((E_ACK, client, acked))
                    for key in acked:
                        k = keys.get(key)
                        if k is not None and k[_CLIENT] == client:
                            k[_FLAGS] |= _ACKED
                            k.append(seq)
                            pins += 1
                    if self.watched:
                        out.watch_acks.extend((key, client) for key in acked)
                elif kind == FORGET:
                    k = keys.get(rec[1])
                    if k is not None and _done_with(k):
                        self._die(k, seq)
                elif kind == LIMIT:
                    put((E_LIMIT, rec[1], rec[2]))
                    k = keys.get(rec[1])
                    if k is not None:
                        k.append(seq)
                        pins += 1
                elif kind == WATCH:
                    self.watched = True
                    out.watches.append((rec[1], rec[2]))
        if len(self._finals) > 2 * len(keys) + 10_000:
            self._drop_dead_finals()
        live = self.live[seq] = self.live[seq] + pins
        if live > 0:
            out.body = body
            self.size[seq] = len(body)
            self.entries += len(body)
        else:  # every task it names is gone, with every row of theirs: it need not be written
            self._gone(seq, seq, written=False)
        return out

    def pin_snapshot(self, seq: int, entries: list[tuple[Any, ...]]) -> None:
        """Index row `seq` of a snapshot (entries as `snapshot` makes them): all live."""
        keys = self.keys
        for e in entries:
            tag = e[0]
            if tag == E_SPEC:
                k = keys[e[1]] = [e[1], e[5], 0, 0.0]
            elif tag == E_FINAL:
                k = keys[e[1]]
                k[_FLAGS] |= _FINAL
                k[_WALL] = e[7] or 0.0
            else:
                k = keys[e[2][0]]
                k[_FLAGS] |= _ACKED
            k.append(seq)
        self.live[seq] = self.size[seq] = len(entries)
        self.entries += len(entries)

    def sort_finals(self) -> None:
        """After a snapshot: the finished tasks in finishing order, for prune."""
        finished = (k for k in self.keys.values() if k[_FLAGS] & _FINAL)
        self._finals = deque(sorted(finished, key=_wall))

    def _drop_dead_finals(self) -> None:
        """Forget the finishing order of tasks that died already (acked and forgotten long
        before prune would reach them): it stays within twice the live tasks, amortised."""
        keys = self.keys
        self._finals = deque(k for k in self._finals if keys.get(k[_KEY]) is k)

    def prune(self, before: float) -> Commit:
        """Every finished task older than `before` dies, acknowledged or not."""
        out = self._out = Commit()
        finals = self._finals
        while finals and finals[0][_WALL] < before:
            k = finals.popleft()
            if self.keys.get(k[_KEY]) is k:
                self._die(k, -1)
        return out

    def _die(self, k: _Key, current: int) -> None:
        """The task is kept no more. Its spec's row goes first: until it does, the rows of
        its later entries stay too (else a replay would find it unfinished), so its pins on
        them are released only when that row goes (`_gone`). Not the row being built,
        `current`, whose fate `add` decides at its end."""
        del self.keys[k[_KEY]]
        rows = k[_ROWS:]
        spec = rows[0]
        same = rows.count(spec)
        if same < len(rows):
            self._waiting.setdefault(spec, []).append(rows)
        live = self.live
        left = live[spec] - same
        live[spec] = left
        if left == 0 and spec != current:
            self._gone(spec, current)
        if self.watched:
            self._out.dead_watched.append((k[_KEY],))

    def _gone(self, seq: int, current: int, written: bool = True) -> None:
        """Row `seq` holds nothing live: it is deleted, and so may be the rows of the later
        entries of tasks whose spec was in it."""
        live = self.live
        del live[seq]
        if written:
            self.entries -= self.size.pop(seq)
            self._out.dead_rows.append(seq)
        for rows in self._waiting.pop(seq, ()):
            for s in rows:
                if s != seq:
                    left = live[s] - 1
                    live[s] = left
                    if left == 0 and s != current:
                        self._gone(s, current)


def _done_with(k: _Key) -> bool:
    """Whether a task the core forgot after retention may go: final, and acked by its
    submitter, or submitted by nobody who is owed the result (client_id "")."""
    flags: int = k[_FLAGS]
    return bool(flags & _FINAL and (flags & _ACKED or not k[_CLIENT]))


def _wall(k: _Key) -> float:
    return float(k[_WALL])
