"""The journal: accepted tasks survive the orchestrator's SIGKILL, on a real SQLite file.

The unit tests drive the core and the SQLite backend directly (no thread, no sockets); the
process tests SIGKILL a real orchestrator that `swarm up`'s supervisor restarts on the same
port, and check the exactly-once invariant (tests/invariants.py) over every accepted task.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import grpc
import psutil
import pytest
from swarm.deploy.local import LocalSwarm
from swarm.server.config import OrchestratorConfig
from swarm.server.core import Core
from swarm.server.hosts import HostHello
from swarm.server.journal_base import ATTEMPT_BLOCK
from swarm.server.journal_sqlite import SqliteJournal
from swarm.server.model import Task, TaskState
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests import invariants, test_deploy
from tests.handlers_for_tests import RUNLOG_ENV
from tests.helpers import ROOT, eventually, local_swarm
from tests.raw_client import RawClient, spec

HANDLERS = "tests.handlers_for_tests"


def _core(path: Path) -> tuple[Core, SqliteJournal]:
    journal = SqliteJournal(path)
    core = Core(OrchestratorConfig())
    core.journaling = True
    core.restore(journal.load(), 0.0, time.time())
    return core, journal


def _commit(core: Core, journal: SqliteJournal) -> None:
    records = core.take_effects().journal
    if records:
        journal.write([records])


def test_restart_restores_unfinished_owed_and_acked_results_and_fences_attempts(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    core, journal = _core(path)
    host = core.host_joined(HostHello("h", 1, "test", frozenset({"k"}), 4, 4), 0.0)
    tasks = [Task(f"t{i}", "k", b"%d" % i) for i in range(4)]
    child = Task("child", "k", b"c")
    core.submit([*tasks, child], [(), (), (), (), ("t0",)], "cli", 0.0)
    _commit(core, journal)
    assert {t.key: t.attempt for t in host.outbox} == {f"t{i}": 1 for i in range(4)}
    core.on_results(host, [("t0", 1, b"zero", None)], 1.0)
    outbox = core.clients["cli"]
    core.ack(outbox, ["t0"])
    core.on_results(host, [("t1", 1, b"one", None)], 1.0)  # finished, never acked
    _commit(core, journal)
    journal.close()  # the process dies here; nothing else reaches the file

    again, journal2 = _core(path)
    table = again.tasks
    assert table["t0"].state is TaskState.SUCCEEDED and table["t0"].output == b"zero"
    assert table["t1"].output == b"one"
    assert list(again.clients["cli"].pending) == ["t1"]  # owed once more; t0 was acked
    for key in ("t2", "t3", "child"):
        assert not table[key].state.final
    # What was assigned comes back queued, numbered past every attempt the last run could send.
    assert table["t2"].attempt == ATTEMPT_BLOCK and table["t2"].state is TaskState.QUEUED
    assert table["child"].state is TaskState.QUEUED  # its dependency t0 had succeeded
    # Users are shown the attempts made, not the fencing number: none since the restart.
    assert {table[k].attempts for k in ("t2", "t3", "child")} == {0}
    host2 = again.host_joined(HostHello("h", 1, "test", frozenset({"k"}), 8, 8), 2.0)
    assert {t.key: t.attempt for t in host2.outbox}["t2"] == ATTEMPT_BLOCK + 1
    # A late result of the last incarnation's attempt is stale.
    again.on_results(host2, [("t2", 1, b"late", None)], 2.0)
    assert not table["t2"].state.final and again.counters.stale_results == 1
    again.on_results(host2, [("t2", ATTEMPT_BLOCK + 1, b"two", None)], 2.0)
    assert table["t2"].state.final and table["t2"].attempts == 1
    # A new task may depend on one finished before the crash.
    assert again.submit([Task("later", "k", b"")], [("t1",)], "cli", 2.0).accepted == 1
    _commit(again, journal2)
    journal2.close()
    third, journal3 = _core(path)  # a final row keeps the attempts made
    assert (third.tasks["t2"].attempts, third.tasks["t0"].attempts) == (1, 1)
    assert third.tasks["t3"].attempts == 0 and third.tasks["t3"].attempt == 2 * ATTEMPT_BLOCK
    journal3.close()


def test_an_attempt_past_its_reservation_is_journaled_and_gates_its_host(tmp_path: Path) -> None:
    core, journal = _core(tmp_path / "journal.sqlite")
    host = core.host_joined(HostHello("h", 1, "test", frozenset({"k"}), 1, 1), 0.0)
    core.submit([Task("t", "k", b"")], None, "", 0.0)
    task = core.tasks["t"]
    for n in range(ATTEMPT_BLOCK):  # handed back unstarted, again and again
        assert task.attempt == n + 1
        core.on_returned(host, [("t", task.attempt)], 0.0)
    assert task.attempt == ATTEMPT_BLOCK + 1 and host in core.gated_hosts
    _commit(core, journal)
    journal.close()
    again, j2 = _core(tmp_path / "journal.sqlite")
    assert again.tasks["t"].attempt == 2 * ATTEMPT_BLOCK  # past the reservation journaled
    j2.close()


def test_a_reconnecting_host_keeps_what_it_runs_of_the_last_incarnation_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    core, journal = _core(path)
    kinds = frozenset({"k"})
    core.host_joined(HostHello("a", 1, "test", kinds, 2, 2), 0.0)
    core.host_joined(HostHello("b", 2, "test", kinds, 2, 2), 0.0)
    core.submit([Task(f"t{i}", "k", b"") for i in range(5)], None, "cli", 0.0)
    sent = {t.key: (h.id, t.attempt) for h in core.hosts.values() for t in h.inflight.values()}
    assert len(sent) == 4  # t4 is queued
    _commit(core, journal)
    journal.close()  # the orchestrator dies; the hosts run on

    again, journal2 = _core(path)
    table = again.tasks
    on_a = [(k, n) for k, (h, n) in sent.items() if h == "a"]
    on_b = [(k, n) for k, (h, n) in sent.items() if h == "b"]
    # Host a comes back first, with its two attempts: they become current, not rerun.
    a = again.host_joined(HostHello("a", 1, "test", kinds, 2, 2, running=(*on_a,)), 1.0)
    assert {k for k in a.inflight} == {k for k, _ in on_a} and not a.cancels
    for key, attempt in on_a:
        assert table[key].state is TaskState.RUNNING and table[key].attempt == attempt
        assert table[key].attempts == 1
    b = again.host_joined(
        HostHello("b", 2, "test", kinds, 2, 2, running=(*on_b, (on_a[0][0], 1))), 1.0
    )
    assert set(b.inflight) == {k for k, _ in on_b}
    assert b.cancels == [(on_a[0][0], 1)]  # a stale copy: adopted from a already, fenced
    assert table["t4"].state is TaskState.QUEUED  # no agent free: nothing rerun meanwhile
    key, attempt = on_a[0]
    again.on_results(a, [(key, attempt, b"kept", None)], 2.0)
    assert table[key].state is TaskState.SUCCEEDED and table[key].output == b"kept"
    assert again.counters.stale_results == 0
    # An adopted attempt that ends without a result: the next attempt is numbered past the
    # floor, never again a number the last incarnation may have sent.
    key2, attempt2 = on_a[1]
    again.on_returned(a, [(key2, attempt2)], 3.0)
    nxt = next(t for h in again.hosts.values() for t in h.inflight.values() if t.key == key2)
    assert nxt.attempt == ATTEMPT_BLOCK + 1 and nxt.attempts == 2
    journal2.close()


def _server(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "swarm.server", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def test_a_corrupt_journal_is_an_error_naming_the_file_and_fresh_starts_afresh(
    tmp_path: Path,
) -> None:
    path = tmp_path / "journal.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    proc = _server("--state-dir", str(tmp_path))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert str(path) in err and "--fresh" in err, err
    proc = _server("--state-dir", str(tmp_path), "--fresh", "--port-file", str(tmp_path / "p"))
    try:
        eventually(lambda: (tmp_path / "p").exists(), 60, what="a fresh start")
        assert list(tmp_path.glob("journal.sqlite.*.old")), "the old journal is kept aside"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def _slept(task_id: str, r: types_pb2.TaskResult) -> bool:
    return r.state == types_pb2.SUCCEEDED and r.output == b"20"


def _known(stub: object, task_id: str) -> bool:
    try:
        stub.GetTasks(task_pb2.GetTasksRequest(task_ids=[task_id]), timeout=10)  # type: ignore[attr-defined]
    except grpc.RpcError as exc:
        assert exc.code() == grpc.StatusCode.NOT_FOUND, exc
        return False
    return True


def _replied(client: RawClient, after: int) -> int:
    return sum(r.batch_id > after for r in client.replies)


def _active(c: LocalSwarm) -> int:
    try:
        return len(c.active_hosts())
    except grpc.RpcError:
        return 0  # the new orchestrator is not listening yet


def test_sigkill_the_orchestrator_three_times_under_load_every_task_ends_exactly_once(
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    with local_swarm(
        hosts=2,
        agents_per_host=50,
        server_args=["--state-dir", str(state)],
        restart_orchestrator=True,
        restart_delay_s=0.05,
        restart_max_delay_s=0.2,
    ) as c:
        client = RawClient(c.address, "durable")
        client.connect()
        dag = [spec("root", "sleep", 20)] + [
            spec(f"d{i}", "sleep", 20, depends_on=["root"]) for i in range(200)
        ]
        client.submit_ok(dag)
        batches: dict[int, list[str]] = {}  # batch_id -> its ids
        for n in range(4):  # three rounds end in a SIGKILL amid their batches, the last not
            base = client._batch
            round_ids = [f"w{n}-{i}" for i in range(2500)]
            for j in range(5):
                batches[base + 1 + j] = round_ids[j * 500 : (j + 1) * 500]
            client.submit([spec(i, "sleep", 20) for i in round_ids], chunk=500)
            if n == 3:
                eventually(lambda b=base: _replied(client, b) >= 5, 60, what="5 replies")
                break
            eventually(lambda b=base: _replied(client, b) >= 2, 60, what="2 batches accepted")
            pid = c.orchestrator_pid
            assert pid is not None
            os.kill(pid, signal.SIGKILL)
            eventually(
                lambda p=pid: c.orchestrator_pid not in (None, p), 30, what="a new orchestrator"
            )
            eventually(lambda: _active(c) >= 2, 60, 0.05, what="hosts reconnected")
            client.disconnect()
            client.connect()
        ok = {r.batch_id for r in client.replies if r.code == 0}
        accepted = [i for b, b_ids in batches.items() if b in ok for i in b_ids]
        for b, b_ids in batches.items():  # a batch killed mid-submit is whole or absent
            if b not in ok:
                known = {_known(c.stub, b_ids[j]) for j in (0, 250, 499)}
                assert len(known) == 1, f"batch {b} is partly journaled"
        every = [s.id for s in dag] + accepted
        # Wait for these ids, not for a count: a batch whose reply the kill cut off may have
        # been journaled whole, and its results count too.
        eventually(
            lambda: not set(every) - set(client.results), 120, 0.02, what="every accepted result"
        )
        figures = invariants.check(c.stub, {client: every}, _slept)
        print(f"\nSIGKILL x3 invariant: {figures.line()}; {len(accepted)} of 10,000 accepted")
        figures.assert_ok()
        assert c.supervisor.orchestrator_restarts == 3
        client.close()


# ---- Ctrl-C on `swarm up`, then `swarm up` again on the same state directory ---------------

tag = test_deploy.tag  # the fixture: every process a test starts is gone at its end


def _runs(path: Path) -> list[tuple[str, str]]:
    """(task_id, event) of each line the `logged_sleep` handler wrote."""
    if not path.exists():
        return []
    return [(line.split()[0], line.split()[3]) for line in path.read_text().splitlines()]


def _infos(stub: task_pb2_grpc.TaskServiceStub, ids: list[str]) -> dict[str, task_pb2.TaskInfo]:
    reply = stub.GetTasks(task_pb2.GetTasksRequest(task_ids=ids), timeout=10)
    return {t.task_id: t for t in reply.tasks}


def test_ctrl_c_drains_and_stops_and_the_next_swarm_up_resumes_what_was_left(
    tmp_path: Path, tag: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    runlog = tmp_path / "runlog"
    monkeypatch.setenv(RUNLOG_ENV, str(runlog))  # the children inherit it, as they do the tag
    monkeypatch.setenv("PYTHONPATH", str(ROOT))  # where tests.handlers_for_tests lives
    args = ("--hosts", "1", "--agents-per-host", "4", "--module", HANDLERS, "--no-metrics")
    done = [f"done{i}" for i in range(20)]  # finished and acknowledged before the Ctrl-C
    slow = [f"slow{i}" for i in range(10)]  # 4 running at the Ctrl-C, 6 waiting
    nobody = [f"nobody{i}" for i in range(5)]  # of a kind no host serves: queued throughout
    up = test_deploy.Up(tmp_path, tag, *args)
    try:
        with RawClient(up.address, "resumer") as first:
            first.submit_ok([spec(i, "echo", i.encode()) for i in done])
            first.wait_results(len(done), 30)
            # Submitted after the acks of `done` on the same stream: once accepted, they applied.
            first.submit_ok([spec(i, "no-such-kind", b"x") for i in nobody])
            first.submit_ok([spec(i, "logged_sleep", b"1500") for i in slow])
            eventually(
                lambda: sum(e == "start" for _, e in _runs(runlog)) >= 4, 30, what="4 running"
            )
            children = psutil.Process(up.proc.pid).children(recursive=True)
            up.ctrl_c()
            assert up.proc.wait(30) == 0, up.text()
            eventually(
                lambda: (
                    not any(c.is_running() and c.status() != psutil.STATUS_ZOMBIE for c in children)
                ),
                10,
                what="no child of the first swarm up left",
            )
        # The drain let the running tasks finish (none cancelled), and started nothing more.
        runs = _runs(runlog)
        ended = [i for i, e in runs if e == "end"]
        assert sorted(ended) == sorted(i for i, e in runs if e == "start"), runs
        assert 4 <= len(ended) < len(slow), runs
        before = set(first.results)
    finally:
        up.close()

    again = test_deploy.Up(tmp_path, tag, *args)  # same directory: the same ./.swarm journal
    try:
        with RawClient(again.address, "resumer") as second:
            infos = _infos(second.stub, nobody + slow)
            states = {i: t.state for i, t in infos.items()}
            assert {states[i] for i in nobody} == {types_pb2.QUEUED}, states
            # Never run: 0 attempts shown, whatever fencing number was reserved for them.
            assert {infos[i].attempt for i in nobody} == {0}, infos
            unfinished = [i for i in slow if i not in ended]
            assert all(states[i] not in invariants.FINAL for i in unfinished), states
            # A task finished in the last run is still a valid dependency.
            second.submit_ok([spec("after", "echo", b"a", depends_on=["done0"])])
            everything_left = [*slow, "after"]
            eventually(
                lambda: not set(everything_left) - set(second.results) - before,
                60,
                what="the unfinished tasks' results",
            )
            second.stub.Cancel(task_pb2.CancelRequest(task_ids=nobody), timeout=10)
            eventually(lambda: set(nobody) <= set(second.results), 30, what="cancelled")
            results = second.results
            assert not set(done) & set(second.deliveries), "an acknowledged result came again"
            assert all(n == 1 for n in second.deliveries.values()), second.deliveries
            for i in slow:
                r = results.get(i) or first.results[i]
                assert r.state == types_pb2.SUCCEEDED and r.output == b"1500", r
                assert r.attempts == 1, r  # one attempt made since the restart (or before it)
            assert results["after"].state == types_pb2.SUCCEEDED
            assert {results[i].state for i in nobody} == {types_pb2.CANCELLED}
            # Every slow task ran to its end exactly once, over both runs.
            ends = Counter(i for i, e in _runs(runlog) if e == "end")
            assert ends == Counter(slow), ends
        again.ctrl_c()
        assert again.proc.wait(30) == 0, again.text()
    finally:
        again.close()


def test_hosts_finish_what_they_ran_when_the_orchestrator_died_and_nothing_runs_twice(
    tmp_path: Path,
) -> None:
    """SIGKILL the journaled orchestrator while every agent runs a task; the supervisor restarts
    it, the hosts reconnect and report their attempts, which are adopted: each task ran once,
    on the host that had it, and its result (attempts 1) is the one delivered."""
    runlog = tmp_path / "runlog"
    ids = [f"a{i}" for i in range(8)]
    with local_swarm(
        hosts=2,
        agents_per_host=4,
        modules=[HANDLERS],
        env={RUNLOG_ENV: str(runlog), "PYTHONPATH": str(ROOT)},
        server_args=["--state-dir", str(tmp_path / "state")],
        restart_orchestrator=True,
        restart_delay_s=0.05,
        restart_max_delay_s=0.2,
        orchestrator_log_level="INFO",
    ) as c:
        with RawClient(c.address, "adopted") as client:
            # Long enough to outlast the restart and the hosts' reconnect on a loaded machine.
            client.submit_ok([spec(i, "logged_sleep", b"8000") for i in ids])
            eventually(lambda: len(_runs(runlog)) == len(ids), 30, what="every task running")
        pid = c.orchestrator_pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        eventually(lambda: c.orchestrator_pid not in (None, pid), 30, what="a new orchestrator")
        eventually(lambda: _active(c) >= 2, 60, 0.05, what="hosts reconnected")
        with RawClient(c.address, "adopted") as again:
            results = again.wait_results(len(ids), 60)
            stale = c.status().stale_results
        runs = _runs(runlog)
        assert Counter(i for i, e in runs if e == "start") == Counter(ids), runs
        assert Counter(i for i, e in runs if e == "end") == Counter(ids), runs
        hosts = dict(zip(c.host_pids, ("h0", "h1"), strict=True))
        started_on = {
            line.split()[0]: hosts[int(line.split()[2])]
            for line in runlog.read_text().splitlines()
            if line.split()[3] == "start"
        }
        for i in ids:
            r = results[i]
            assert r.state == types_pb2.SUCCEEDED and r.output == b"8000", r
            assert r.attempts == 1 and r.host_id == started_on[i], (r, started_on[i])
        assert stale == 0 and "attempts of the last incarnation adopted" in c.log()
