"""The orchestrator owns its loops: a dead timer loop stops the process (or the in-process
Server) with its error, instead of leaving it running without leases, retries or timeouts."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from swarm.common.faults import FaultPlan, InjectedFault
from swarm.server.app import Server
from swarm.server.config import OrchestratorConfig
from swarm.server.session import StreamSession

from tests.helpers import eventually

BREAK_TIMERS = '{"method": "timers", "action": "raise", "after": 3}'
ROOT = Path(__file__).resolve().parent.parent


def fast() -> OrchestratorConfig:
    return OrchestratorConfig(tick_s=0.01)


def test_a_raise_rule_is_only_for_the_timer_loop() -> None:
    with pytest.raises(ValueError, match="raise"):
        FaultPlan.parse('{"method": "Connect", "action": "raise"}')
    with pytest.raises(ValueError, match="raise"):
        FaultPlan.parse('{"method": "timers", "action": "drop"}')


def test_wait_raises_the_timer_loops_error_and_stop_does_not_raise_it_again() -> None:
    async def scenario() -> None:
        server = Server(fast(), port=0, faults=FaultPlan.parse(BREAK_TIMERS))
        await server.start()
        try:
            with pytest.raises(InjectedFault):
                await asyncio.wait_for(server.wait(), 10)
            assert isinstance(server.failure, InjectedFault)
        finally:
            await server.stop(0.1)  # already raised by wait(): not a second time

    asyncio.run(scenario())


def test_async_with_reraises_a_dead_timer_loop_on_exit() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        with pytest.raises(InjectedFault):
            async with Server(fast(), port=0, faults=FaultPlan.parse(BREAK_TIMERS)) as s:
                deadline = loop.time() + 10
                while s.failure is None:
                    assert loop.time() < deadline, "the timer loop did not fail"
                    await asyncio.sleep(0.01)

    asyncio.run(scenario())


def test_a_clean_stop_raises_nothing_and_ends_serving() -> None:
    async def scenario() -> None:
        async with Server(fast(), port=0) as s:
            async with grpc.aio.insecure_channel(s.address) as channel:
                check = health_pb2_grpc.HealthStub(channel).Check
                reply = await check(health_pb2.HealthCheckRequest(), timeout=5)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
            s.request_stop()
            await asyncio.wait_for(s.wait(), 5)  # returns: nothing failed
        assert s.failure is None

    asyncio.run(scenario())


def start_orchestrator(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[str], Path]:
    port_file = tmp_path / "port"
    proc = subprocess.Popen(
        [sys.executable, "-m", "swarm.server", "--port", "0", "--port-file", str(port_file)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env},
        cwd=ROOT,
    )
    return proc, port_file


def test_an_orchestrator_process_whose_tick_raises_exits_non_zero_with_the_traceback(
    tmp_path: Path,
) -> None:
    proc, _ = start_orchestrator(tmp_path, {"SWARM_FAULTS": BREAK_TIMERS})
    try:
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode not in (0, None)
    assert "Traceback" in err and "InjectedFault" in err and "run_timers" in err, err
    assert "orchestrator-timers failed" in err, err


def test_an_orchestrator_process_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    proc, port_file = start_orchestrator(tmp_path, {})
    try:
        eventually(lambda: port_file.exists(), 20, what="the port file")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert proc.returncode == 0, err


class _Broken(StreamSession):
    def __init__(self, error: BaseException) -> None:
        super().__init__(cast(Any, None), "broken")  # the stream is never touched
        self.error = error

    async def read(self) -> None:
        raise self.error

    async def write(self) -> None:
        await self.woken()


def test_a_core_error_in_a_session_is_logged_as_a_bug_a_stream_error_is_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.ERROR, logger="swarm.server")
    bug, broken = _Broken(KeyError("no such task")), _Broken(grpc.aio.AbortError("gone"))
    assert asyncio.run(bug.run()) is False
    assert asyncio.run(broken.run()) is False
    bugs = [r for r in caplog.records if "bug" in r.getMessage()]
    assert len(bugs) == 1 and bugs[0].exc_info is not None
    assert bugs[0].exc_info[1] is bug.error and bug.bug is bug.error
    assert broken.bug is None
