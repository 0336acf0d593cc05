"""The journal's log (format 2, server/journal_log.py) on a real SQLite file, driven by the core.

One row per group commit, rows deleted once nothing in them is kept: the risk is deleting a
row a replay still needs. So a seeded random run of the real core (submissions, results, acks,
retention forgetting tasks, resubmissions of forgotten ids, prune) checks after every commit
what a crash at that moment would recover, read from the file as `load` reads it:

* every task the core holds comes back as it is (unfinished, or final with its output, acked
  exactly when its submitter acked it);
* a task the core forgot either is gone or comes back final and, if acked, acked: never
  unfinished (it would run again) and never owed again once acked;
* the rows kept stay bounded, and once everything is forgotten none are left.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from swarm.server import journal_log
from swarm.server.config import OrchestratorConfig
from swarm.server.core import Core
from swarm.server.hosts import HostHello, HostView
from swarm.server.journal_base import SUBMIT, JournalError
from swarm.server.journal_sqlite import SqliteJournal
from swarm.server.journal_writer import JournalWriter
from swarm.server.model import Task, TaskState

from tests.helpers import ROOT


def _recovered(journal: SqliteJournal) -> dict[str, object]:
    """What a crash now would recover: the rows on file, replayed (deferred deletes and all)."""
    bodies = [bytes(b) for (b,) in journal.db.execute("SELECT body FROM log ORDER BY seq")]
    return dict(journal_log.replay(bodies))


class _Run:
    def __init__(self, path: Path, seed: int, compact_min_entries: int) -> None:
        self.rng = random.Random(seed)
        self.journal = SqliteJournal(path, compact_min_entries=compact_min_entries)
        self.core = Core(OrchestratorConfig(max_retained=25))
        self.core.journaling = True
        self.core.restore(self.journal.load(), 0.0, time.time())
        hello = HostHello("h", 1, "test", frozenset({"k"}), 16, 16)
        self.host: HostView = self.core.host_joined(hello, 0.0)
        self.acked: set[str] = set()  # keys whose current task its submitter acked
        self.forgotten: set[str] = set()  # ids submitted before and forgotten since
        self.running: list[Task] = []
        self.n = 0

    def commit(self) -> None:
        records = self.core.take_effects().journal
        if records:
            self.journal.write([records])
            self.journal.maintain()  # as the writer thread does after its writes

    def step(self, now: float) -> None:
        rng, core = self.rng, self.core
        op = rng.random()
        if op < 0.3:
            tasks = []
            for _ in range(rng.randint(1, 6)):
                if self.forgotten and rng.random() < 0.2:
                    key = self.forgotten.pop()  # resubmitted after retention: a new task
                else:
                    self.n += 1
                    key = f"t{self.n}"
                tasks.append(Task(key, "k", key.encode()))
            core.submit(tasks, None, rng.choice(["a", "b", ""]), now)
            for t in tasks:
                self.acked.discard(t.key)
        elif op < 0.65:
            batch, _ = core.take_assignments(self.host, 16, now)
            self.running.extend(batch)
            rng.shuffle(self.running)
            done, self.running = self.running[:4], self.running[4:]
            core.on_results(self.host, [(t.key, t.attempt, b"out-" + t.key.encode(), None)
                                        for t in done], now)  # fmt: skip
        else:
            for client, outbox in list(core.clients.items()):
                got = core.take_results(outbox, 50)
                keys = [t.key for t in got if rng.random() < 0.8]
                if keys:
                    core.ack(outbox, keys)
                    self.acked.update(k for k in keys if core.tasks[k].client_id == client)
        known = set(core.tasks)
        self.forgotten |= {f"t{i}" for i in range(1, self.n + 1)} - known - self.forgotten
        self.commit()

    def check(self) -> None:
        rows = _recovered(self.journal)
        for key, task in self.core.tasks.items():
            row = rows.get(key)
            assert row is not None, f"{key} is held but would not be recovered"
            assert bool(row.state) == task.state.final, key  # type: ignore[attr-defined]
            if task.state.final:
                assert row.output == task.output, key  # type: ignore[attr-defined]
                acked = key in self.acked and bool(task.client_id)
                assert row.acked == acked, key  # type: ignore[attr-defined]
        for key, row in rows.items():
            if key not in self.core.tasks:
                assert row.state, f"{key} was forgotten but would run again"  # type: ignore[attr-defined]
                if key in self.acked:
                    assert row.acked, f"{key} was acked but would be owed again"  # type: ignore[attr-defined]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("compact_min_entries", [200_000, -(10**6)])  # never, every commit
def test_a_crash_after_any_commit_recovers_what_the_core_held_and_nothing_run_twice(
    tmp_path: Path, seed: int, compact_min_entries: int
) -> None:
    run = _Run(tmp_path / "journal.sqlite", seed, compact_min_entries)
    for i in range(500):
        run.step(float(i))
        run.check()
    if compact_min_entries < 0:
        assert run.journal.compactions > 0
    # Every task finished, acked and forgotten: no row is needed, and none are left.
    drained = 0.0
    while run.core.live_tasks and drained < 10_000:
        drained += 1
        run.core.on_results(run.host, [(t.key, t.attempt, b"x", None) for t in run.running], 0)
        run.running = run.core.take_assignments(run.host, 64, 0.0)[0]
        run.commit()
    for outbox in run.core.clients.values():
        while got := run.core.take_results(outbox, 100):
            run.core.ack(outbox, [t.key for t in got])
    run.commit()
    run.core.submit([Task(f"flush{i}", "k", b"") for i in range(40)], None, "", 0.0)  # retention
    run.commit()
    run.check()
    run.journal.prune(time.time() + 1)  # and the rest, past any client's interest
    count = run.journal.db.execute("SELECT count(*) FROM log").fetchone()[0]
    assert count <= 1, f"{count} rows kept for nothing"  # the flush batch's row, unfinished
    run.journal.close()


def test_a_restart_replays_a_snapshot_and_a_second_one_too(tmp_path: Path) -> None:
    """`load` rewrites the log as a snapshot: what it wrote must replay the same, twice."""
    path = tmp_path / "journal.sqlite"
    run = _Run(path, 7, 200_000)
    for i in range(300):
        run.step(float(i))
    run.journal.close()
    with contextlib.closing(sqlite3.connect(path)) as db:
        before = journal_log.replay(bytes(b) for (b,) in db.execute("SELECT body FROM log"))
    for _ in range(2):
        journal = SqliteJournal(path)
        rec = journal.load()
        assert [r.key for r in rec.tasks] == list(before)
        for r in rec.tasks:
            b = before[r.key]
            assert (r.state, r.output, r.acked) == (b.state, b.output, b.acked)
        assert journal.db.execute("SELECT count(*) FROM log").fetchone()[0] == 1
        journal.close()


def test_a_log_row_that_cannot_be_decoded_is_an_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = SqliteJournal(path)
    journal.load()
    journal.close()
    db = sqlite3.connect(path)
    db.execute("INSERT INTO log VALUES (99, ?)", (b"\x00not marshal",))
    db.execute("INSERT INTO log VALUES (100, ?)", (journal_log.encode([(9, "k")]),))
    db.commit()
    db.close()
    with pytest.raises(JournalError, match=str(path)) as exc:
        SqliteJournal(path).load()
    assert "--fresh" in str(exc.value)


def test_a_commit_of_other_submitters_is_one_transaction_and_their_acks_are_kept(
    tmp_path: Path,
) -> None:
    """Watchers (another client submitting the same id) keep their own table."""
    core_j = SqliteJournal(tmp_path / "journal.sqlite")
    core = Core(OrchestratorConfig())
    core.journaling = True
    core.restore(core_j.load(), 0.0, time.time())
    host = core.host_joined(HostHello("h", 1, "test", frozenset({"k"}), 4, 4), 0.0)
    core.submit([Task("x", "k", b"1")], None, "a", 0.0)
    core.submit([Task("x", "k", b"1")], None, "b", 0.0)  # b is owed x's result too
    batch, _ = core.take_assignments(host, 4, 0.0)
    core.on_results(host, [("x", batch[0].attempt, b"done", None)], 1.0)
    core.ack(core.clients["a"], ["x"])
    core_j.write([core.take_effects().journal])
    core_j.close()
    rec = SqliteJournal(tmp_path / "journal.sqlite").load()
    assert [(r.key, r.state, r.acked) for r in rec.tasks] == [("x", TaskState.SUCCEEDED, True)]
    assert rec.watchers == [("x", "b", False)]


_WRITER = """
import sys
from swarm.server.journal_base import SUBMIT
from swarm.server.journal_sqlite import SqliteJournal
from swarm.server.model import Task
journal = SqliteJournal(sys.argv[1])
journal.load()
for b in range(10_000):
    journal.write([[(SUBMIT, [Task(f"b{b}-{i}", "k", b"x" * 100) for i in range(5000)])]])
    print(b, flush=True)
"""


def test_a_process_killed_amid_its_commits_leaves_each_batch_whole_or_absent(
    tmp_path: Path,
) -> None:
    """SIGKILL a real process writing 5,000-task batches (each its own commit) at a moment of
    its choosing: every batch it reported committed is there whole, any other whole or absent."""
    path = tmp_path / "journal.sqlite"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert proc.stdout is not None
        reported = [int(proc.stdout.readline()) for _ in range(3)]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    journal = SqliteJournal(path)
    rec = journal.load()
    journal.close()
    sizes: dict[str, int] = {}
    for row in rec.tasks:
        batch = row.key.split("-")[0]
        sizes[batch] = sizes.get(batch, 0) + 1
    assert all(f"b{b}" in sizes for b in reported)
    assert set(sizes.values()) == {5000}, sizes


def test_the_writer_commits_inline_when_idle_and_on_its_thread_when_not(tmp_path: Path) -> None:
    """Idle: the commit is made on the loop as soon as the caller yields, with every append
    made until then (one commit). Just after a commit (inside the idle time): queued for the
    thread. Either way durable() waits for it, and it is on file."""
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    journal.load()

    async def run() -> None:
        writer = JournalWriter(journal, inline=True, inline_idle_s=3600.0)
        writer.start(asyncio.get_running_loop())
        writer.append([(SUBMIT, [Task("a", "k", b"")])])  # never committed before: idle
        writer.append([(SUBMIT, [Task("a2", "k", b"")])])  # before the loop ran: joins it
        assert writer.commits == 0  # not before the caller yields
        fut = writer.durable()
        assert fut is not None
        await asyncio.wait_for(fut, 30)
        assert (writer.commits, writer.inline_commits, writer.rows) == (1, 1, 2)
        writer.append([(SUBMIT, [Task("b", "k", b"")])])  # an hour is not over: the thread
        fut = writer.durable()
        assert fut is not None
        await asyncio.wait_for(fut, 30)
        assert (writer.commits, writer.inline_commits) == (2, 1)
        await asyncio.to_thread(writer.close)

    asyncio.run(run())
    again = SqliteJournal(tmp_path / "journal.sqlite")
    assert [r.key for r in again.load().tasks] == ["a", "a2", "b"]
    again.close()


def test_a_commit_due_on_the_loop_is_made_by_close(tmp_path: Path) -> None:
    """Closed before the loop ran the commit it was to make: close() commits it (on the
    thread), and the loop's turn finds nothing left to do."""
    journal = SqliteJournal(tmp_path / "journal.sqlite")
    journal.load()

    async def run() -> None:
        writer = JournalWriter(journal, inline=True)
        writer.start(asyncio.get_running_loop())
        writer.append([(SUBMIT, [Task("a", "k", b"")])])
        assert writer.commits == 0
        writer.close()  # blocking, on purpose: before the loop's turn
        await asyncio.sleep(0)  # that turn: nothing to commit, nothing raised
        assert writer.failure is None and writer.inline_commits == 0

    asyncio.run(run())
    again = SqliteJournal(tmp_path / "journal.sqlite")
    assert [r.key for r in again.load().tasks] == ["a"]
    again.close()
