"""The journal's narrow interface: what the orchestrator writes to durable storage, and reads back.

The core (core_journal.py) records what changed as plain records, one list per core call; the
edge hands each list to a `JournalWriter` (journal_writer.py), whose thread applies every list
queued since its last commit in one transaction (group commit) through a `JournalBackend`.
A backend needs five calls, so that one on PostgreSQL (docs/durability.md) can be added beside
the SQLite one (journal_sqlite.py) without touching the core or the edge:

* `load()`: once, before serving: everything kept, for recovery (journal_recovery.py), and the
  start of a new incarnation (attempt numbers reserved past every one the last one could send);
* `write(groups)`: apply the records of several core calls atomically, in order;
* `prune(before)`: drop finished rows older than a wall-clock horizon (bounded disk);
* `maintain()`: housekeeping that must stay off the event loop (SQLite's checkpoints), called
  by the writer thread after its writes and now and then when commits are made inline;
* `close()`.

Records are tuples whose first item is the kind (the constants below); the Task objects they
carry are read by the writer thread only in fields that no longer change (the spec once
accepted, the outcome once final), so no copy is made on the event loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

# Record kinds. SUBMIT: (SUBMIT, [Task, ...]) new tasks of one accepted batch.
SUBMIT = 1
# (FINAL, Task): the task reached its one final state (its state, attempt, output, error).
FINAL = 2
# (ACK, client_id, [key, ...]): the client acknowledged these results.
ACK = 3
# (FORGET, key): the task left the in-memory table (retention); its row may go once acked.
FORGET = 4
# (WATCH, key, client_id): another client submitted the id too and is owed the result.
WATCH = 5
# (LIMIT, key, attempt_limit): attempts up to this number may be sent (see core_journal.py).
LIMIT = 6

Record = tuple[Any, ...]

# Attempt numbers are reserved in blocks: a task's row holds the highest attempt number that
# may be sent (attempt_limit); sending a higher one first journals a new limit (LIMIT), and
# `load()` moves every unfinished task's limit one block on, so a new incarnation numbers its
# attempts past any the previous one can have sent, without a journal write per attempt.
ATTEMPT_BLOCK = 8


class JournalError(RuntimeError):
    """The journal cannot be read or written; the message names the file."""


@dataclass(slots=True)
class TaskRow:
    """One task as the journal holds it: its spec, and its outcome once final."""

    key: str
    id: str
    kind: str
    payload: bytes
    client_id: str
    deps: tuple[str, ...]
    priority: int
    timeout_s: float
    max_retries: int
    labels: dict[str, str] | None
    schedule_timeout_s: float
    non_retryable: frozenset[str]
    attempt_limit: int
    state: int  # 0 while unfinished, else the final TaskState
    attempt: int
    host_id: str | None
    output: bytes
    error: tuple[int, str, str, str] | None  # reason, type, message, traceback
    finished_at: float | None  # wall clock
    acked: bool


@dataclass(slots=True)
class Recovered:
    """What `load()` returns: the rows in submission order, and the other submitters."""

    tasks: list[TaskRow] = field(default_factory=list)
    # (key, client_id, acked): clients other than the submitter owed a task's result.
    watchers: list[tuple[str, str, bool]] = field(default_factory=list)
    incarnation: int = 1
    path: str = ""


class JournalBackend(Protocol):
    def load(self) -> Recovered: ...

    def write(self, groups: Sequence[Sequence[Record]]) -> None: ...

    def prune(self, before: float) -> int: ...

    def maintain(self) -> None: ...

    def close(self) -> None: ...
