"""Local deployment: `swarm up`, `swarm host`, `swarm demo` and the `LocalSwarm` supervisor.

Real processes throughout. Every child is started with a tag in its environment, so each test
can prove at the end that no process of its own is left, whatever happened in between.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import psutil
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swarm.deploy.local import LocalSwarm
from swarm.deploy.procs import restart_backoff, send
from swarm.deploy.spec import Phase, SwarmSpec
from swarm.deploy.supervisor import Supervisor
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.helpers import eventually

TAG = "SWARM_TEST_TAG"
READY = re.compile(r"swarm listening on (\S+) \(orchestrator pid (\d+); host pids ([\d ]+)\)")
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG")


def tagged(tag: str) -> list[psutil.Process]:
    """Live processes whose environment carries `tag`: ours, and their descendants."""
    found = []
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(TAG) == tag and proc.status() != psutil.STATUS_ZOMBIE:
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.fixture
def tag() -> Iterator[str]:
    """A fresh tag; at the end, every process that carries it must be gone."""
    value = uuid.uuid4().hex
    yield value
    try:
        eventually(lambda: not tagged(value), 10, 0.05, what="no process left behind")
    finally:
        for proc in tagged(value):  # do not leak into the next test, whatever the verdict
            proc.kill()


class Up:
    """`swarm up` as a user runs it: in a session of its own, like a terminal's foreground job."""

    def __init__(self, tmp: Path, tag: str, *args: str) -> None:
        self.out = tmp / "up.out"
        with open(self.out, "wb") as sink:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "swarm.cli", "up", "--port", "0", *args],
                stdout=sink,
                stderr=subprocess.STDOUT,
                env={**os.environ, TAG: tag},
                start_new_session=True,
                cwd=tmp,  # its journal (./.swarm) stays in the test's directory
            )
        match = eventually(lambda: READY.search(self.text()), 60, 0.02, what="ready line")
        self.address = match.group(1)
        self.orchestrator_pid = int(match.group(2))
        self.host_pids = [int(p) for p in match.group(3).split()]

    def text(self) -> str:
        return self.out.read_text(errors="replace")

    def ctrl_c(self) -> None:
        """What a terminal does: SIGINT to the whole foreground process group."""
        os.killpg(self.proc.pid, signal.SIGINT)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)


def stub(address: str) -> tuple[grpc.Channel, task_pb2_grpc.TaskServiceStub]:
    channel = grpc.insecure_channel(address)
    return channel, task_pb2_grpc.TaskServiceStub(channel)


# ---- no processes ----


def test_restart_backoff_doubles_while_crashing_and_resets_after_a_stable_run() -> None:
    b = restart_backoff(initial_s=0.1, max_s=1.0)
    b.jitter = 0.0  # the curve itself (tests/test_backoff.py tests the jitter)
    assert [b.next(0.5) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert b.next(10.0) == 0.1
    assert b.next(0.0) == 0.2


def test_spec_refuses_nonsense_and_phases_refuse_illegal_edges() -> None:
    with pytest.raises(ValueError, match="agents_per_host"):
        SwarmSpec(agents_per_host=0)
    with pytest.raises(ValueError, match="port"):
        SwarmSpec(port=70000)
    sup = Supervisor(SwarmSpec(hosts=1, port=0))
    with pytest.raises(RuntimeError, match="STARTING to STOPPED"):
        sup._move(Phase.STOPPED)


# ---- swarm up ----


def test_up_runs_one_orchestrator_and_n_hosts_serves_health_and_stops_on_ctrl_c(
    tmp_path: Path, tag: str
) -> None:
    up = Up(tmp_path, tag, "--hosts", "2", "--agents-per-host", "20")
    try:
        children = psutil.Process(up.proc.pid).children(recursive=True)
        assert sorted(c.pid for c in children) == sorted([up.orchestrator_pid, *up.host_pids])
        modules = sorted(
            c.cmdline()[c.cmdline().index("swarm.deploy.orphan") + 1] for c in children
        )
        assert modules == ["swarm.agent_host", "swarm.agent_host", "swarm.server"]
        with grpc.insecure_channel(up.address) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            status = task_pb2_grpc.TaskServiceStub(channel).GetStatus(
                task_pb2.GetStatusRequest(), timeout=5
            )
            assert sorted(h.pid for h in status.hosts) == sorted(up.host_pids)
        up.ctrl_c()
        assert up.proc.wait(15) == 0, up.text()
        assert "swarm up: stopped" in up.text()
        eventually(lambda: not any(psutil.pid_exists(c.pid) for c in children), 5)
    finally:
        up.close()


def test_second_ctrl_c_kills_hosts_that_are_still_draining(tmp_path: Path, tag: str) -> None:
    up = Up(tmp_path, tag, "--hosts", "2", "--agents-per-host", "2", "--drain-grace", "60")
    try:
        channel, tasks = stub(up.address)
        with channel:
            long = [
                types_pb2.TaskSpec(id=f"long{i}", kind="sleep", payload=b"60000") for i in range(4)
            ]
            tasks.Submit(task_pb2.SubmitRequest(tasks=long), timeout=5)
            eventually(
                lambda: tasks.GetStatus(task_pb2.GetStatusRequest(), timeout=5).tasks.running == 4,
                20,
                what="4 tasks running",
            )
            up.ctrl_c()
            # The first Ctrl-C drains: the orchestrator is still up and sees its hosts draining.
            eventually(
                lambda: all(
                    h.state == types_pb2.DRAINING
                    for h in tasks.GetStatus(task_pb2.GetStatusRequest(), timeout=5).hosts
                ),
                10,
                what="hosts draining",
            )
        up.ctrl_c()
        up.proc.wait(10)  # far less than the 60 s grace
    finally:
        up.close()


@linux_only
def test_children_die_with_a_sigkilled_supervisor(tmp_path: Path, tag: str) -> None:
    up = Up(tmp_path, tag, "--hosts", "2", "--agents-per-host", "5")
    try:
        up.proc.kill()  # no cleanup runs: only PR_SET_PDEATHSIG can take the children down
        up.proc.wait(5)
        pids = [up.orchestrator_pid, *up.host_pids]
        eventually(lambda: not any(psutil.pid_exists(p) for p in pids), 10, what="orphans gone")
    finally:
        up.close()


def test_up_fails_clearly_when_the_port_is_taken(tmp_path: Path, tag: str) -> None:
    with LocalSwarm(hosts=0, env={TAG: tag}) as first:
        proc = subprocess.run(
            [sys.executable, "-m", "swarm.cli", "up", "--port", str(first.port), "--hosts", "1"],
            capture_output=True,
            text=True,
            env={**os.environ, TAG: tag},
            timeout=60,
            cwd=tmp_path,
        )
    assert proc.returncode == 1
    assert "port in use" in proc.stderr


# ---- the supervisor as an API ----


def test_a_killed_host_is_restarted_and_takes_work_again(tag: str) -> None:
    with LocalSwarm(hosts=2, agents_per_host=10, env={TAG: tag}) as swarm:
        first = swarm.wait_hosts()
        killed = swarm.host_pids[0]
        swarm.kill_host(0)
        eventually(lambda: swarm.host_pids[0] not in (None, killed), 10, what="a new host 0")
        again = swarm.wait_hosts()
        assert killed not in again and first[1] in again
        assert swarm.restarts == [1, 0]
        channel, tasks = stub(swarm.address)
        with channel:
            specs = [
                types_pb2.TaskSpec(id=f"e{i}", kind="echo", payload=b"%d" % i) for i in range(50)
            ]
            tasks.Submit(task_pb2.SubmitRequest(tasks=specs), timeout=5)
            reply = tasks.Wait(task_pb2.WaitRequest(task_ids=[s.id for s in specs], timeout_s=30))
        assert sorted(r.output for r in reply.results) == sorted(s.payload for s in specs)


def test_a_host_retired_with_sigterm_drains_and_is_not_restarted(tag: str) -> None:
    with LocalSwarm(hosts=2, agents_per_host=5, env={TAG: tag}) as swarm:
        keep = swarm.host_pids[0]
        swarm.kill_host(1, signal.SIGTERM, restart=False)
        slot = swarm.supervisor.slots[1]
        eventually(lambda: slot.last_exit is not None, 15, what="host 1 gone")
        assert slot.last_exit == 0  # drained, not killed
        assert swarm.host_pids[1] is None
        assert swarm.wait_hosts() == [keep]
        assert swarm.restarts == [0, 0]


def test_generation_ids_lost_events_and_an_added_host_supervised_like_the_others(
    tag: str,
) -> None:
    with LocalSwarm(
        hosts=1,
        agents_per_host=5,
        host_ids="generation",
        orchestrator_log_level="INFO",
        restart_delay_s=0.01,
        on_exit="kill",
        env={TAG: tag},
    ) as swarm:
        assert [h.host_id for h in swarm.active_hosts()] == ["h0"]
        killed_at = swarm.kill_host(0)
        eventually(lambda: [h.host_id for h in swarm.active_hosts()] == ["h0-r1"], 10, what="h0-r1")
        (lost,) = [e for e in swarm.lost_events() if e.host_id == "h0"]
        assert lost.lost and lost.at >= killed_at - 0.01, (lost, killed_at)
        # Spawned on the supervisor's thread, in a slot of its own: restarted and reaped too.
        index = swarm.add_host("--agents", "3", host_id="extra")
        assert index == 1 and swarm.wait_hosts(2)
        extra = swarm.host_pids[1]
        assert extra is not None and psutil.Process(extra).ppid() == os.getpid()
        assert {h.host_id: h.agents for h in swarm.active_hosts()} == {"h0-r1": 5, "extra": 3}
        swarm.kill_host(1)
        eventually(lambda: swarm.host_pids[1] not in (None, extra), 10, what="extra restarted")
        assert swarm.restarts == [1, 1]
        swarm.wait_hosts()
        assert {h.host_id for h in swarm.active_hosts()} == {"h0-r1", "extra-r1"}
        pids = [p for p in (swarm.orchestrator_pid, *swarm.host_pids) if p is not None]
    assert not [p for p in pids if psutil.pid_exists(p)]  # on_exit="kill" reaped them all


def test_without_restarts_a_dead_host_stays_dead(tag: str) -> None:
    with LocalSwarm(
        hosts=2, agents_per_host=5, host_ids="slot", restart=False, on_exit="kill", env={TAG: tag}
    ) as swarm:
        first, second = swarm.host_pids
        assert first is not None and second is not None
        swarm.kill_host(0)
        assert swarm.host_exit(first) == -signal.SIGKILL
        assert swarm.wait_hosts() == [second]
        assert [h.host_id for h in swarm.wait_hosts(1) and swarm.active_hosts()] == ["h1"]
        assert swarm.restarts == [0, 0] and swarm.host_pids == [None, second]


def test_a_crash_loop_backs_off_instead_of_spinning(tag: str) -> None:
    swarm = LocalSwarm(hosts=1, modules=["no_such_module_here"], env={TAG: tag}, ready_timeout_s=2)
    with pytest.raises(RuntimeError, match="did not all connect") as err:
        swarm.start()
    # 0.1 + 0.2 + 0.4 + 0.8 s of backoff fit in 2 s: a handful of starts, not hundreds. How
    # many depends on how long a failing start takes (2 at a load of 6 on 2 vCPUs): at least
    # one restart shows it restarts at all, the upper bound that it backs off.
    assert 1 <= swarm.restarts[0] <= 6
    assert "No module named 'no_such_module_here'" in str(err.value)


def test_losing_the_orchestrator_stops_the_whole_swarm(tag: str) -> None:
    swarm = LocalSwarm(hosts=1, agents_per_host=5, env={TAG: tag})
    swarm.start()
    try:
        assert swarm.orchestrator_pid is not None
        os.kill(swarm.orchestrator_pid, signal.SIGKILL)
        eventually(lambda: swarm.exit_code is not None, 15, what="supervisor ended")
        assert swarm.exit_code == 1
        assert "orchestrator exited unexpectedly" in (swarm.supervisor.failure or "")
    finally:
        swarm.kill()


def test_swarm_host_joins_a_running_orchestrator_and_drains_on_sigterm(tag: str) -> None:
    with LocalSwarm(hosts=0, env={TAG: tag}) as swarm:
        host = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "swarm.cli",
                "host",
                "--connect",
                swarm.address,
                "--agents",
                "3",
            ],
            env={**os.environ, TAG: tag},
        )
        try:
            active = eventually(
                lambda: [h for h in swarm.status().hosts if h.state == types_pb2.ACTIVE] or None,
                30,
                what="the joined host",
            )
            assert [h.pid for h in active] == [host.pid]
            host.send_signal(signal.SIGTERM)
            assert host.wait(15) == 0
        finally:
            if host.poll() is None:
                host.kill()
                host.wait(5)


# ---- swarm demo ----


def test_demo_exits_zero_and_prints_a_summary(tag: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "swarm.cli", "demo", "--hosts", "2", "--tasks", "50"],
        capture_output=True,
        text=True,
        env={**os.environ, TAG: tag},
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "tasks       51 (50 pi.sample, then 1 pi.reduce" in out
    assert re.search(r"wall time\s+[\d.]+ s \([\d,]+ tasks/s\)", out)
    hosts = re.search(r"per host\s+(.*)", out)
    assert hosts is not None and sum(int(n) for n in re.findall(r": (\d+)", hosts.group(1))) == 51
    assert re.search(r"answer\s+pi ~ 3\.1\d+ from 1,000,000 samples", out)


def test_signalling_a_child_that_has_just_died_leaves_its_exit_status_to_asyncio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A signal to a child that died a moment ago (a second Ctrl-C, a drain after a kill) must not
    reap it: Popen.send_signal polls with waitpid, taking the status from asyncio's child
    watcher, which then logs "Unknown child process" and reports 255 instead of -SIGKILL."""

    async def kill_and_keep_signalling() -> int:
        proc = await asyncio.create_subprocess_exec("sleep", "60")
        assert send(proc, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while proc.returncode is None:  # the zombie waits for the watcher thread; signal it
            assert time.monotonic() < deadline, "the killed child was never reaped"
            send(proc, signal.SIGTERM)
            await asyncio.sleep(0)
        return proc.returncode

    async def many() -> list[int]:
        return [await kill_and_keep_signalling() for _ in range(30)]

    with caplog.at_level(logging.WARNING, logger="asyncio"):
        codes = asyncio.run(many())  # the stdlib loop, as the supervisor runs
    assert codes == [-signal.SIGKILL] * 30
    assert not [r for r in caplog.records if "Unknown child" in r.getMessage()]
