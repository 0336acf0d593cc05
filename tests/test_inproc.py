"""The in-process rung itself: hosts by name, add and drain, clean stops, loops side by side."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import grpc
import pytest
from swarm.client import AsyncClient, Client
from swarm.common.runtime import run
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.config import OrchestratorConfig
from swarm.v1 import task_pb2, types_pb2

from tests.helpers import eventually
from tests.raw_client import RawClient, spec


def swarm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "swarm-inproc"]


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    # asyncio reports a destroyed pending task or a failed callback only through the log.
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


def test_hosts_are_named_active_and_gone_after_stop(caplog: pytest.LogCaptureFixture) -> None:
    config = OrchestratorConfig(prefetch=3)
    with InProcessSwarm(hosts=2, agents_per_host=7, config=config) as swarm:
        hosts = swarm.status().hosts
        assert sorted(h.host_id for h in hosts) == ["h0", "h1"]
        assert all(h.state == types_pb2.ACTIVE and h.agents == 7 for h in hosts)
        assert swarm.address == f"127.0.0.1:{swarm.port}" and swarm.port > 0
        assert swarm.server is not None and swarm.server.config.prefetch == 3
        reply = swarm.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("t", "echo", b"x")]))
        assert list(reply.task_ids) == ["t"]
        address = swarm.address
    assert not swarm_threads()
    with grpc.insecure_channel(address) as channel, pytest.raises(grpc.FutureTimeoutError):
        grpc.channel_ready_future(channel).result(timeout=0.2)  # nothing listens there any more
    assert not errors_logged(caplog)


def test_each_host_serves_its_own_modules_and_never_the_crash_kind() -> None:
    with InProcessSwarm(hosts=1, agents_per_host=5) as swarm:
        i = swarm.add_host(modules=["tests.handlers_for_tests"], host_id="special", agents=3)
        assert i == 1
        kinds = {h.host_id: set(h.kinds) for h in swarm.wait_hosts(2)}
        assert "special" in kinds["special"] and "special" not in kinds["h0"]
        assert "echo" in kinds["h0"] and not {"crash"} & (kinds["h0"] | kinds["special"])
        assert {h.host_id: h.agents for h in swarm.status().hosts} == {"h0": 5, "special": 3}


def test_a_drained_host_leaves_and_the_rest_keep_working() -> None:
    with InProcessSwarm(hosts=2, agents_per_host=5) as swarm, RawClient(swarm.address) as client:
        swarm.drain_host(0)
        assert [h.host_id for h in swarm.wait_hosts(1)] == ["h1"]
        client.submit_ok([spec(f"t{i}", "echo", b"x") for i in range(20)])
        client.wait_results(20)
        done = {h.host_id: h.tasks_done for h in swarm.status().hosts}
        assert done.get("h1") == 20 and not done.get("h0"), done


def _stop_under_load() -> None:
    swarm = InProcessSwarm(hosts=2, agents_per_host=10)
    swarm.start()
    with RawClient(swarm.address) as client:
        client.submit_ok([spec(f"s{i}", "sleep", 60_000) for i in range(50)])  # some queue
        eventually(lambda: sum(h.running for h in swarm.status().hosts) == 20, 10)
    swarm.stop()
    swarm.stop()  # a second stop is harmless
    assert not swarm_threads()


def test_stop_under_load_cancels_everything_cleanly(caplog: pytest.LogCaptureFixture) -> None:
    _stop_under_load()
    gc.collect()  # with the swarm gone, a task it left pending is reported as destroyed
    assert not errors_logged(caplog)


def test_sdk_loops_of_both_kinds_run_beside_the_swarm_loop() -> None:
    async def work(address: str) -> list[int]:
        async with AsyncClient(address) as client:
            return await client.gather(await client.map("echo", list(range(300))))

    with InProcessSwarm(hosts=1, agents_per_host=20) as a, InProcessSwarm(hosts=1) as b:
        assert a.port != b.port
        assert run(work(a.address)) == list(range(300))  # uvloop in this thread
        assert asyncio.run(work(b.address)) == list(range(300))  # the stdlib loop
        with Client(a.address) as client:  # the sync client's loop thread
            assert client.gather(client.map("echo", [1, 2])) == [1, 2]


def test_async_with_from_a_test_loop() -> None:
    async def go() -> None:
        async with (
            InProcessSwarm(hosts=1, agents_per_host=4) as swarm,
            AsyncClient(swarm.address) as client,
        ):
            assert await (await client.submit("echo", b"hi")) == b"hi"
            assert len((await client.status()).hosts) == 1

    asyncio.run(asyncio.wait_for(go(), 30))
    assert not swarm_threads()


def test_a_host_that_cannot_start_is_reported() -> None:
    swarm = InProcessSwarm(hosts=1, modules=["no_such_module_here"], ready_timeout_s=5)
    with pytest.raises(RuntimeError, match="did not start") as info:
        swarm.start()
    assert isinstance(info.value.__cause__, ModuleNotFoundError)
    assert not swarm_threads()
