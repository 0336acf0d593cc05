"""Chaos over real processes: SIGKILL, kill storms, a network partition, a drain, a dead client.

Each test asserts the invariant with RawClient (which records every delivery, so a double one
shows): every accepted task has exactly one final state and its client received exactly one
result; and each checks that results are correct. The kill storm also mixes in a client that
reconnects and resubmits, and a second submitter: `invariants.check` checks all three. Waits
poll with deadlines; sleeps only pace a chaos schedule. Measured figures (detection times,
counts) are printed: run with `-s` to see them.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import psutil
import pytest
from swarm.deploy.events import LostEvent
from swarm.deploy.local import LocalSwarm
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests import invariants, netns
from tests.handlers_for_tests import RUNLOG_ENV
from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec

HANDLERS = "tests.handlers_for_tests"
ROOT = Path(__file__).resolve().parent.parent


# ---- what the processes tell us ------------------------------------------------------------


def lost_events(c: LocalSwarm) -> list[LostEvent]:
    """The orchestrator's "host ... lost" lines (its "left" ones are INFO, below our WARNING)."""
    return [e for e in c.lost_events() if e.lost]


@dataclass(frozen=True)
class Run:
    """One line of the run log the `logged_sleep` handler writes."""

    task_id: str
    attempt: int
    pid: int
    event: str  # start, end or cancel
    at: float


def read_runlog(path: Path) -> list[Run]:
    if not path.exists():
        return []
    runs = []
    for line in path.read_text().splitlines():
        task_id, attempt, pid, event, at = line.split()
        runs.append(Run(task_id, int(attempt), int(pid), event, float(at)))
    return runs


def host_state(c: LocalSwarm, host_id: str) -> int | None:
    return next((h.state for h in c.status().hosts if h.host_id == host_id), None)


def host_status(c: LocalSwarm, host_id: str) -> task_pb2.HostStatus | None:
    return next((h for h in c.status().hosts if h.host_id == host_id), None)


# ---- fixtures ------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_process_left() -> Iterator[None]:
    """Every test leaves no process behind: its clusters and clients are reaped at exit."""
    yield

    def leftovers() -> list[str]:
        out = []
        for p in psutil.Process().children(recursive=True):
            try:
                if p.status() != psutil.STATUS_ZOMBIE:
                    out.append(f"{p.pid} {' '.join(p.cmdline())[:120]}")
            except psutil.NoSuchProcess:
                pass
        return out

    try:
        eventually(lambda: not leftovers(), 10, 0.05, what="no child process left")
    except AssertionError:
        raise AssertionError(f"processes left behind: {leftovers()}") from None


@pytest.fixture
def runlog(tmp_path: Path) -> Path:
    return tmp_path / "runlog"


# ---- 1. SIGKILL one of two hosts -----------------------------------------------------------


@pytest.mark.slow
def test_sigkill_one_of_two_hosts_everything_completes_once_and_detection_is_fast() -> None:
    with local_swarm(hosts=2, agents_per_host=25) as c, RawClient(c.address) as client:
        ids = [f"k{i}" for i in range(2000)]
        client.submit_ok([spec(i, "sleep", 50) for i in ids])
        started = time.monotonic()
        pid = c.host_pids[0]
        time.sleep(max(0.0, started + 0.5 - time.monotonic()))  # pace: the kill lands at 0.5 s
        killed_wall, killed = c.kill_host(0), time.monotonic()
        # Observed from outside: the host leaves GetStatus (polled as fast as the server answers).
        eventually(lambda: host_state(c, "h0") is None, 5, 0.001, what="h0 declared lost")
        polled_s = time.monotonic() - killed
        c.host_exit(pid, 5)
        results = client.wait_results(len(ids), 60)
        total_s = time.monotonic() - started

        bad = {
            i: r for i, r in results.items() if r.state != types_pb2.SUCCEEDED or r.output != b"50"
        }
        assert not bad, list(bad.items())[:3]
        client.assert_exactly_once(ids)
        (lost,) = [e for e in lost_events(c) if e.host_id == "h0"]
        assert lost.pid == pid and lost.why.startswith("its stream"), lost  # not by the lease
        assert lost.requeued > 0 and lost.quarantined == 0, lost  # it held work when it died
        logged_s = lost.at - killed_wall
        moved = sum(1 for r in results.values() if r.host_id == "h1" and r.attempts > 1)
        print(
            f"\nSIGKILL -> declared lost: {logged_s * 1000:.0f} ms by the orchestrator's log "
            f"(ms resolution), {polled_s * 1000:.0f} ms seen through GetStatus; "
            f"{lost.requeued} tasks requeued, {moved} of them finished on h1; "
            f"2000 x 50 ms in {total_s:.2f} s"
        )
        # A broken stream is noticed at once, not by the lease (1.5 s): generous for a noisy CI.
        assert logged_s < 0.5, f"lost {logged_s:.3f} s after SIGKILL"


# ---- 2. a kill storm -----------------------------------------------------------------------


@pytest.mark.slow
def test_kill_a_random_host_every_300ms_for_10s_while_10k_tasks_run() -> None:
    seed = int(os.environ.get("SWARM_CHAOS_SEED") or random.randrange(1 << 30))
    rng = random.Random(seed)  # which host dies when; timing makes a run unrepeatable anyway
    with (
        # Restarted at once, not after the backoff of a crash loop: the storm is the test's.
        local_swarm(
            hosts=3,
            agents_per_host=40,
            restart=True,
            restart_delay_s=0.01,
            restart_max_delay_s=0.01,
        ) as c,
        RawClient(c.address) as client,
        RawClient(c.address, "resumer", ack=False) as resumer,
        RawClient(c.address, "second") as second,
    ):
        ids = [f"r{i}" for i in range(10_000)]
        client.submit_ok([spec(i, "sleep", 150) for i in ids])
        # The client mix beside the hosts' storm: one that drops its stream twice mid-run
        # without acking and, as the SDK does, resubmits on the new stream what it had no
        # result for when the old one broke (results it had are sent again on the new stream
        # since they were not acked; some it is resubmitting finish meanwhile), and a second
        # submitter of a tenth of the ids.
        own = [f"q{i}" for i in range(1000)]
        shared = ids[::10]
        kills: dict[int, float] = {}  # pid -> wall-clock time of its SIGKILL
        started = time.monotonic()
        end = started + 10.0
        tick = started
        ticks = 0
        while time.monotonic() < end:
            tick += 0.3
            ticks += 1
            time.sleep(max(0.0, tick - time.monotonic()))  # pace the schedule
            if ticks == 5:
                second.submit_ok([spec(i, "sleep", 150) for i in shared])
            if ticks == 8:  # ahead of the queue: they run across the two drops below
                resumer.submit_ok([spec(i, "sleep", 150, priority=1) for i in own])
            if ticks in (10, 12):
                unfinished = [i for i in own if i not in resumer.results]
                resumer.disconnect()
                resumer.connect()
                resumer.submit_ok([spec(i, "sleep", 150, priority=1) for i in unfinished])
            pids = c.host_pids
            alive = [i for i, p in enumerate(pids) if p is not None]
            if alive:
                victim = rng.choice(alive)
                kills[pids[victim]] = c.kill_host(victim)  # the supervisor reaps and restarts it
        during = len(client.results)
        results = client.wait_results(len(ids), 60)
        resumer.wait_results(len(own), 30)
        second.wait_results(len(shared), 30)
        total_s = time.monotonic() - started

        client.assert_exactly_once(ids)
        figures = invariants.check(
            c.stub, {client: ids, resumer: own, second: shared}, _slept_150_or_quarantined
        )
        print(f"\nkill storm invariant: {figures.line()}")
        figures.assert_ok()
        # Each reopen sends again only what the resumer had not acknowledged: its own tasks.
        assert 0 < figures.redelivered <= 2 * len(own), figures
        by_state = Counter(types_pb2.TaskState.Name(r.state) for r in results.values())
        quarantined = {i: r for i, r in results.items() if r.state != types_pb2.SUCCEEDED}
        for i, r in quarantined.items():
            # Only the poison-task rule may fail a task here, and only after K lost hosts.
            assert r.state == types_pb2.FAILED and r.error.reason == types_pb2.HOST_LOST, (i, r)
        for i, r in results.items():
            if r.state == types_pb2.SUCCEEDED:
                assert r.output == b"150", (i, r)
        events = lost_events(c)
        requeued = sum(e.requeued for e in events)
        detect_ms = sorted((e.at - kills[e.pid]) * 1000 for e in events if e.pid in kills)
        reassigned = sum(1 for r in results.values() if r.attempts > 1)
        print(
            f"\nkill storm (seed {seed}): {len(kills)} SIGKILLs, {sum(c.restarts)} restarts, "
            f"{len(events)} hosts declared lost ({len(kills) - len(detect_ms)} killed before "
            f"they joined), "
            f"{requeued} requeues; detection median {statistics.median(detect_ms):.0f} ms, "
            f"max {detect_ms[-1]:.0f} ms; {during} results during the storm; all 10,000 final "
            f"in {total_s:.1f} s: {dict(by_state)}; {reassigned} tasks assigned more than once, "
            f"attempts max {max(r.attempts for r in results.values())}"
        )
        # A restarted host takes 0.3-1 s to join on a loaded 2-vCPU machine, so many kills land
        # on one that has not joined yet (22 of 34 in one run): no share of kills is promised,
        # only that several landed on joined hosts (a restart that never rejoins gives <= 3).
        assert len(kills) >= 25 and len(detect_ms) >= 5, (kills, events)
        # Every kill was seen by its broken stream (or the restarted host's new session), never
        # by waiting out the lease.
        assert not [e for e in events if e.why.startswith("no message")], events
        assert detect_ms[-1] < 1500, detect_ms
        # 120 agents need 12.5 s for 10,000 x 150 ms at best: the storm hit a running swarm.
        assert during < len(ids), "everything finished before the storm ended"
        # The blame rule cannot tell a task that kills its host from one that happened to be
        # running when an outside kill came, K times over: a few innocent tasks are quarantined
        # (0.2-0.3 % here: a task is running during ~1/6 of its host's life, cubed). Rare, or
        # the rule has gone wrong.
        assert len(quarantined) <= len(ids) // 100, f"{len(quarantined)} quarantined"


def _slept_150_or_quarantined(task_id: str, r: types_pb2.TaskResult) -> bool:
    if r.state == types_pb2.SUCCEEDED:
        return r.output == b"150"
    return r.state == types_pb2.FAILED and r.error.reason == types_pb2.HOST_LOST


# ---- 3. a network partition ----------------------------------------------------------------


@pytest.fixture
def ns() -> Iterator[netns.NetNs]:
    reason = netns.unavailable()
    if reason is not None:
        print(f"\nSKIP partition test: {reason}")
        pytest.skip(reason)
    with netns.NetNs() as n:
        yield n


@pytest.mark.netns
@pytest.mark.slow
def test_partitioned_host_is_lost_within_the_lease_fenced_then_rejoins(
    ns: netns.NetNs, runlog: Path
) -> None:
    interval_s, lease_s = 0.5, 1.5
    with (
        local_swarm(
            bind=ns.root_addr,  # not loopback: the namespaced host reaches it over the veth
            hosts=1,
            agents_per_host=20,  # h0 can start all of hp's work the moment hp is declared lost
            modules=[HANDLERS],
            # Plaintext beyond loopback, said out loud: a private veth pair of this test only
            # (tests/test_security_netns.py runs failover across namespaces over mTLS).
            server_args=[
                *("--heartbeat-interval", str(interval_s), "--lease", str(lease_s)),
                "--insecure-i-know-what-i-am-doing",
            ],
            env={RUNLOG_ENV: str(runlog)},
        ) as c,
        RawClient(c.address) as client,
    ):
        cut_off = c.add_host("--agents", "10", host_id="hp", wrap=ns.exec_args)
        c.wait_hosts(2)
        # 20 tasks on h0, 10 on hp. Half end while the link is down (their results are late),
        # half still run when it is back (hp reports them and the orchestrator aborts them).
        first = [f"a{i}" for i in range(30)]
        ms = {i: 1000 if n % 2 else 5000 for n, i in enumerate(first)}
        client.submit_ok([spec(i, "logged_sleep", str(ms[i]).encode()) for i in first])

        def hp_running() -> bool:
            h = host_status(c, "hp")
            return h is not None and h.running >= 8

        eventually(hp_running, 10, 0.01, what="the namespaced host running its share")
        down_wall, down = time.time(), time.monotonic()
        ns.link_down()
        eventually(lambda: host_state(c, "hp") is None, lease_s + 5, 0.005, what="hp lost")
        polled_s = time.monotonic() - down
        (lost,) = [e for e in lost_events(c) if e.host_id == "hp"]
        detect_s = lost.at - down_wall
        assert lost.requeued >= 8 and lost.quarantined == 0, lost
        assert "no message for" in lost.why, lost
        # Lost by the lease, counted from hp's last message (up to a heartbeat interval before
        # the cut): not before that, and not much after (a tick, plus a noisy machine).
        assert lease_s - interval_s - 0.1 <= detect_s <= lease_s + 1.0, f"lost after {detect_s} s"
        ns.link_up()
        up = time.monotonic()
        eventually(lambda: host_state(c, "hp") == types_pb2.ACTIVE, 20, 0.01, what="hp back")
        rejoin_s = time.monotonic() - up

        results = client.wait_results(len(first), 30)
        runs = read_runlog(runlog)
        hp_pid = c.host_pids[cut_off]
        on_hp = {r.task_id for r in runs if r.pid == hp_pid and r.event == "start"}
        assert len(on_hp) >= 8, on_hp
        for i in first:
            r = results[i]
            assert r.state == types_pb2.SUCCEEDED and r.output == str(ms[i]).encode(), r
        # Its work finished elsewhere: no result of a task that ran on hp came from hp.
        from_hp = sorted(i for i in on_hp if results[i].host_id != "h0" or results[i].attempts < 2)
        assert not from_hp, [(i, results[i].host_id, results[i].attempts) for i in from_hp]

        # Every attempt that hp started before the cut either finished there (a late result,
        # dropped) or was aborted once hp reported it still ran it.
        def hp_outcomes() -> dict[str, str] | None:
            done = {
                r.task_id: r.event
                for r in read_runlog(runlog)
                if r.pid == hp_pid and r.attempt == 1 and r.event in ("end", "cancel")
            }
            return done if set(done) >= on_hp else None

        outcomes = eventually(hp_outcomes, 10, 0.05, what="hp's attempts to end")
        late = sorted(i for i, e in outcomes.items() if e == "end")
        aborted = sorted(i for i, e in outcomes.items() if e == "cancel")

        # It takes new work after it rejoined.
        second = [f"b{i}" for i in range(40)]
        client.submit_ok([spec(i, "logged_sleep", b"200") for i in second])
        results = client.wait_results(len(first) + len(second), 30)
        assert all(results[i].state == types_pb2.SUCCEEDED for i in second)
        assert any(results[i].host_id == "hp" for i in second), "hp took no new work"
        client.assert_exactly_once(first + second)
        # No task of the first batch produced a result twice from the client's point of view,
        # yet hp did finish some of them: those results were fenced off.
        stale = c.status().stale_results
        print(
            f"\npartition: lost {detect_s * 1000:.0f} ms after the cut by the log "
            f"({polled_s * 1000:.0f} ms through GetStatus; lease {lease_s} s); "
            f"rejoined {rejoin_s:.2f} s after the link came back; of hp's {len(on_hp)} attempts "
            f"{len(late)} finished late (results dropped), {len(aborted)} were aborted on rejoin; "
            f"stale_results counter {stale}"
        )
        assert late or aborted


# ---- 4. a drain ----------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_drain_reassigns_nothing_that_started_and_runs_nothing_twice(
    runlog: Path,
) -> None:
    with (
        local_swarm(
            hosts=2, agents_per_host=20, modules=[HANDLERS], env={RUNLOG_ENV: str(runlog)}
        ) as c,
        RawClient(c.address) as client,
    ):
        ids = [f"d{i}" for i in range(120)]
        client.submit_ok([spec(i, "logged_sleep", b"1000") for i in ids])
        h0 = c.host_pids[0]

        def h0_full() -> bool:
            h = host_status(c, "h0")
            return h is not None and h.running == 20 and h.assigned > 0

        eventually(h0_full, 10, 0.01, what="h0 running a full load with more queued")
        c.kill_host(0, signal.SIGTERM)
        termed = time.monotonic()
        assert c.host_exit(h0, 15) == 0  # it leaves by itself once its running tasks are done
        exit_s = time.monotonic() - termed
        results = client.wait_results(len(ids), 30)

        for i in ids:
            r = results[i]
            assert r.state == types_pb2.SUCCEEDED and r.output == b"1000", r
        client.assert_exactly_once(ids)
        runs = read_runlog(runlog)
        starts = Counter(r.task_id for r in runs if r.event == "start")
        assert set(starts) == set(ids), set(ids) - set(starts)
        twice = {i: n for i, n in starts.items() if n > 1}
        assert not twice, f"run more than once: {twice}"
        assert not [r for r in runs if r.event == "cancel"]
        # Whatever started on h0 finished on h0, and its result is the one delivered: the drain
        # reassigned none of it (Hatchet's bug was reassigning work a draining worker ran).
        on_h0 = {r.task_id for r in runs if r.pid == h0 and r.event == "start"}
        ended_h0 = {r.task_id for r in runs if r.pid == h0 and r.event == "end"}
        assert on_h0 and on_h0 == ended_h0, on_h0 ^ ended_h0
        assert all(results[i].host_id == "h0" and results[i].attempts == 1 for i in on_h0)
        # What h0 held but had not started was handed back, without counting a loss.
        handed_back = [i for i, r in results.items() if r.host_id == "h1" and r.attempts > 1]
        assert not [e for e in lost_events(c) if e.host_id == "h0"]
        assert c.status().stale_results == 0
        assert [h.host_id for h in c.status().hosts] == ["h1"]
        print(
            f"\ndrain: h0 exited {exit_s:.2f} s after SIGTERM having run {len(on_h0)} tasks to "
            f"the end; {len(handed_back)} it held unstarted ran on h1; no task ran twice"
        )
        assert handed_back, "h0 held nothing unstarted: the hand-back path was not exercised"


# ---- 5. a client killed mid-run ------------------------------------------------------------


def _child_client(address: str, client_id: str, n_tasks: int, n_ack: int, out: str) -> None:
    """Runs in a subprocess: submits, acks the first n_ack results, then receives without acking.

    Writes "acked ID" and "got ID" lines to `out` (flushed per line) so the parent knows. Right
    after its last ack it submits the task MARKER on the same stream: the server handles one
    stream's messages in order, so once MARKER exists every ack before it has been applied.
    """
    import queue

    sent: queue.Queue[task_pb2.ClientMessage] = queue.Queue()
    sent.put(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id=client_id)))
    tasks = [spec(f"c{i}", "sleep", 30) for i in range(n_tasks)]
    sent.put(task_pb2.ClientMessage(submit=task_pb2.SubmitBatch(batch_id=1, tasks=tasks)))

    def requests() -> Iterator[task_pb2.ClientMessage]:
        while True:
            yield sent.get()

    stub = task_pb2_grpc.TaskServiceStub(grpc.insecure_channel(address))
    acked = 0
    with open(out, "w", buffering=1) as log:
        for msg in stub.Session(requests()):
            if msg.WhichOneof("msg") != "results":
                continue
            ids = [r.task_id for r in msg.results.results]
            for i in ids:
                log.write(f"got {i}\n")
            ack = ids[: max(0, n_ack - acked)]
            if ack:
                sent.put(task_pb2.ClientMessage(ack=task_pb2.AckBatch(task_ids=ack)))
                acked += len(ack)
                for i in ack:
                    log.write(f"acked {i}\n")
                if acked == n_ack:
                    marker = task_pb2.SubmitBatch(batch_id=2, tasks=[spec(MARKER, "echo", b"m")])
                    sent.put(task_pb2.ClientMessage(submit=marker))


MARKER = "marker"


def _known(c: LocalSwarm, task_id: str) -> bool:
    try:
        c.stub.GetTasks(task_pb2.GetTasksRequest(task_ids=[task_id]), timeout=5)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.NOT_FOUND:
            return False
        raise
    return True


@pytest.mark.slow
def test_client_killed_mid_run_resumes_with_exactly_the_unacknowledged_results(
    tmp_path: Path,
) -> None:
    n_tasks, n_ack = 2000, 300
    out = tmp_path / "child.log"
    with local_swarm(hosts=2, agents_per_host=20) as c:
        code = (
            "import sys; from tests.test_chaos import _child_client; "
            "_child_client(sys.argv[1], 'resumer', int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])"
        )
        child = subprocess.Popen(
            [sys.executable, "-c", code, c.address, str(n_tasks), str(n_ack), str(out)],
            env=c.env,
            cwd=ROOT,
            start_new_session=True,
        )
        try:

            def acked() -> list[str] | None:
                text = out.read_text() if out.exists() else ""
                ids = [line.split()[1] for line in text.splitlines() if line.startswith("acked ")]
                return ids if len(ids) == n_ack else None

            acked_ids = eventually(acked, 30, 0.01, what=f"the child acking {n_ack} results")
            # The acks were applied once the marker submitted after them on the same stream
            # exists (acknowledged tasks stay in the table for the retention window, so they
            # cannot tell by themselves).
            eventually(lambda: _known(c, MARKER), 10, 0.005, what="acks applied")
            child.send_signal(signal.SIGKILL)
            child.wait(5)
        finally:
            if child.poll() is None:
                os.killpg(child.pid, signal.SIGKILL)
                child.wait(5)
        got_before = {
            line.split()[1] for line in out.read_text().splitlines() if line[:4] == "got "
        }
        finished = c.status().tasks.succeeded
        assert finished < n_tasks, "every task had finished before the kill: not mid-run"

        expected = [*sorted({f"c{i}" for i in range(n_tasks)} - set(acked_ids)), MARKER]
        with RawClient(c.address, client_id="resumer") as again:
            results = again.wait_results(len(expected), 60)
            again.assert_exactly_once(expected)  # nothing acknowledged comes back, none twice
            for i, r in results.items():
                want = b"m" if i == MARKER else b"30"
                assert r.state == types_pb2.SUCCEEDED and r.output == want, (i, r)
        redelivered = len(got_before - set(acked_ids))
        print(
            f"\nclient kill: {n_ack} acked; killed with {finished}/{n_tasks} done "
            f"and {redelivered} received but unacknowledged; the new session got exactly the "
            f"{len(expected)} unacknowledged results"
        )
        assert redelivered > 0, "the child received nothing unacknowledged: a weaker test"


def test_a_replaced_client_session_never_takes_results_meant_for_its_successor() -> None:
    """In process, at the moment of a reconnect: the old stream's writer is inside a write when
    the client's new session attaches and takes over the unsent results. The old writer must
    stop there; it used to go on taking batches for a stream nobody reads, and the new session
    never got them (found while writing the client-kill test above)."""
    from swarm.server.config import OrchestratorConfig
    from swarm.server.orchestrator import Orchestrator
    from swarm.server.task_service import MAX_RESULT_BATCH, ClientSession

    from tests.core_helpers import join, ok, submit, take

    n = 3 * MAX_RESULT_BATCH

    class Stream:
        def __init__(self) -> None:
            self.got: list[str] = []
            self.all_in = asyncio.Event()

        async def write(self, msg: task_pb2.ServerMessage) -> None:
            await asyncio.sleep(0.01)  # the transport takes a moment
            self.got += [r.task_id for r in msg.results.results]
            if len(self.got) >= n:
                self.all_in.set()

    async def scenario() -> tuple[list[str], list[str]]:
        orch = Orchestrator(OrchestratorConfig())
        core = orch.core
        host = join(core, "h", capacity=n)
        outbox = core.attach_client("c", 0.0)
        submit(core, *[(f"t{i}", "echo") for i in range(n)], client="c")
        ok(core, host, take(host))
        old_stream, new_stream = Stream(), Stream()
        old = ClientSession(orch, outbox, "", old_stream)  # type: ignore[arg-type]
        orch.client_sessions["c"] = old
        writers = [asyncio.create_task(old.write())]
        old.wake()
        await asyncio.sleep(0.005)  # the old writer is inside its first write
        # What TaskServicer.Session does when the same client_id opens a new stream:
        orch.client_sessions.pop("c").close("replaced by a new session of the same client")
        outbox = core.attach_client("c", 0.0)
        new = ClientSession(orch, outbox, "", new_stream)  # type: ignore[arg-type]
        orch.client_sessions["c"] = new
        writers.append(asyncio.create_task(new.write()))
        new.wake()
        try:
            await asyncio.wait_for(new_stream.all_in.wait(), 5)
        except TimeoutError:
            pass  # the assertion below says what is missing
        finally:
            for w in writers:
                w.cancel()
            await asyncio.gather(*writers, return_exceptions=True)
        return old_stream.got, new_stream.got

    old_got, new_got = asyncio.run(scenario())
    assert len(new_got) == n and set(new_got) == {f"t{i}" for i in range(n)}, (
        f"the new session got {len(new_got)} of {n} unacknowledged results; the replaced one "
        f"wrote {len(old_got)}"
    )
    assert len(old_got) == MAX_RESULT_BATCH  # only the batch it was writing when replaced
