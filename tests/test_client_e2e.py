"""Every public method of the SDK, async and sync, against a real orchestrator and real hosts."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest
from swarm.client import (
    AsyncClient,
    Client,
    DeadlineExceeded,
    DependencyFailed,
    Graph,
    NotFound,
    Rejected,
    SwarmError,
    TaskCancelled,
    TaskFailed,
    TaskTimedOut,
)
from swarm.common.runtime import run as run_loop
from swarm.deploy.inproc import InProcessSwarm

T = TypeVar("T")
AGENTS = 50


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=2, agents_per_host=AGENTS, modules=["tests.client_handlers"]) as c:
        yield c


def run(coro: Coroutine[Any, Any, T]) -> T:
    return run_loop(asyncio.wait_for(coro, 60))


# -- async client ----------------------------------------------------------------------------


def test_submit_round_trips_bytes_untouched_and_values_through_json(
    cluster: InProcessSwarm,
) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            raw = bytes(range(256))
            fut = await client.submit("echo", raw)
            assert await fut == raw and fut.output == raw and fut.done()
            assert fut.attempts == 1 and fut.host_id in ("h0", "h1")
            assert await (await client.submit("double", 21)) == 42
            assert await (await client.submit("sleep", 1)) == 1
            assert await (await client.submit("echo", {"a": [1, "é"]})) == {"a": [1, "é"]}
            assert await (await client.submit("echo", b"1", decode=True)) == 1
            text = await client.submit("echo", b"not json", decode=True)
            with pytest.raises(SwarmError, match="decode=False"):
                await text
            assert text.output == b"not json"

    run(go())


def test_map_gather_and_as_completed(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            payloads = [str(i).encode() for i in range(2000)]
            futs = await client.map("echo", payloads)
            assert len({f.id for f in futs}) == 2000
            assert await client.gather(futs) == payloads
            # Finishing order, with gaps (30 ms and more) that a busy 2-vCPU machine keeps;
            # the exact order of close finishes is test_client_session's, without a wire.
            sleeps = await client.map("sleep", [80, 1, 30])
            order = [await f async for f in client.as_completed(sleeps, timeout=10)]
            assert order == [1, 30, 80]
            values = await client.map("double", (i for i in range(5)))  # any iterable
            assert await client.gather(values) == [0, 2, 4, 6, 8]

    run(go())


def test_map_over_a_generator_longer_than_the_window_submits_it_all(
    cluster: InProcessSwarm,
) -> None:
    """An iterable of unknown length goes a window's worth at a time (not one task at a time
    once the first window is used), and map returns once it ran out."""

    async def go() -> None:
        async with AsyncClient(cluster.address, window=16) as client:
            futs = await client.map("double", (i for i in range(100)))
            assert await client.gather(futs) == [2 * i for i in range(100)]
            # A list that fills the window exactly: map returns at once, not when a result
            # frees a credit (the first comes after 1.5 s).
            futs = await asyncio.wait_for(client.map("sleep", [1500] * 16), 1.0)
            assert await client.gather(futs) == [1500] * 16

    run(go())


def test_a_payload_map_cannot_encode_leaves_nothing_submitted_and_no_credit_taken(
    cluster: InProcessSwarm,
) -> None:
    """A list is encoded whole before anything goes: a bad payload deep in it (past the first
    steps of 1,024) raises Rejected naming it, and none of the list was submitted. From a
    generator, the step that holds it is not submitted, and its credits come back."""

    async def go() -> None:
        async with AsyncClient(cluster.address, window=3) as client:
            probe = await client.submit("double", 1)
            prefix, last = probe.id.rsplit("-", 1)
            payloads: list[object] = list(range(2_000))
            payloads[1_500] = object()
            with pytest.raises(Rejected) as info:
                await client.map("double", payloads)
            assert info.value.field == "payloads[1500]"
            first = f"{prefix}-{int(last, 16) + 1:x}"  # the id the list's first task was given
            with pytest.raises(NotFound):
                await client.get(first)
            with pytest.raises(Rejected) as info:
                await client.map("double", (x for x in [1, 2, object()]))
            assert info.value.field == "payloads[2]"
            # All three credits of the window are free again: a full window goes through.
            futs = await asyncio.wait_for(client.map("double", [1, 2, 3]), 10)
            assert await client.gather(futs) == [2, 4, 6]
            assert await probe == 2

    run(go())


def test_a_careless_submit_is_refused_at_the_call_and_the_session_lives_on(
    cluster: InProcessSwarm,
) -> None:
    """Arguments the wire cannot carry (an id that is not text, a string where a list of
    dependencies belongs, a label that is not a string, an int32 overflow) raise Rejected at
    the call. They used to reach the session's writer, where protobuf's error ended the whole
    session and failed every task of the client; the compiled SDK took a window credit first."""
    bad: list[tuple[dict[str, Any], str]] = [
        ({"id": b"raw"}, "id"),
        ({"id": 5}, "id"),
        ({"id": ""}, "id"),
        ({"id": "a\ud800"}, "id"),
        ({"depends_on": "older-task"}, "depends_on"),
        ({"depends_on": [7]}, "depends_on[0]"),
        ({"labels": {"team": 7}}, "labels['team']"),
        ({"priority": 2**40}, "priority"),
        ({"max_retries": 2**40}, "max_retries"),
    ]

    async def go() -> None:
        async with AsyncClient(cluster.address, window=2) as client:
            pending = await client.submit("sleep", 300)  # in flight throughout
            for kwargs, field in bad:
                with pytest.raises(Rejected) as info:
                    await client.submit("double", 1, **kwargs)
                assert info.value.field == field, kwargs
            with pytest.raises(Rejected) as info:
                await client.map("double", [1, 2], labels={"k": b"v"})  # type: ignore[dict-item]
            assert info.value.field == "labels['k']"
            # The session is the same one, and both credits are there: two tasks at once.
            futs = await asyncio.wait_for(client.map("double", [5]), 10)
            assert await client.gather(futs) == [10]
            assert await pending == 300

    run(go())


def test_task_errors_carry_the_remote_story(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            with pytest.raises(TaskFailed) as info:
                await (await client.submit("fail", b"disk on fire"))
            err = info.value
            assert type(err) is TaskFailed and err.reason == "HANDLER_ERROR"
            assert (err.remote_type, err.remote_message) == ("RuntimeError", "disk on fire")
            assert "RuntimeError: disk on fire" in err.remote_traceback
            with pytest.raises(TaskTimedOut):
                await (await client.submit("sleep", 5000, timeout=0.05))
            g = Graph()
            bad = g.add("fail", b"x")
            child = g.add("echo", b"y", depends_on=[bad])
            futs = await client.submit_graph(g)
            with pytest.raises(DependencyFailed):
                await futs[child]
            mixed = await client.gather(
                [await client.submit("echo", b"ok"), futs[bad]], return_exceptions=True
            )
            assert mixed[0] == b"ok" and isinstance(mixed[1], TaskFailed)

    run(go())


def test_retries_then_success(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            fut = await client.submit("flaky", b"finally", max_retries=2)
            assert await fut == b"finally" and fut.attempts == 2
            with pytest.raises(TaskFailed, match="ConnectionError"):
                await (await client.submit("flaky", b"never", max_retries=0))

    run(go())


def test_result_timeout_and_cancel(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            slow, queued = await client.map("sleep", [60_000, 60_000])
            with pytest.raises(DeadlineExceeded):
                await slow.result(timeout=0.05)
            assert not slow.done()
            assert slow.cancel() is True
            with pytest.raises(TaskCancelled):
                await slow.result(timeout=10)
            states = await client.cancel(queued, slow)
            assert states == {queued.id: "CANCELLED", slow.id: "CANCELLED"}
            with pytest.raises(TaskCancelled):
                await queued.result(timeout=10)
            done = await client.submit("echo", b"x")
            await done
            assert await client.cancel(done) == {done.id: "SUCCEEDED"}
            assert done.cancel() is False

    run(go())


def test_graph_and_scatter_gather(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            g = Graph()
            a = g.add("echo", b"a")
            b = g.add("echo", b"b", id="explicit-b")
            c = g.add("concat", b"c", depends_on=[a, b])
            d = g.add("concat", depends_on=[c, a], decode=False)  # no payload: decoded by default
            futs = await client.submit_graph(g)
            assert futs[b].id == "explicit-b"
            assert await futs[d] == b"a+b+c+a"
            # d's result is in hand (and may be acknowledged): it is still a valid dependency
            # for the orchestrator's retention window.
            later = await client.submit("concat", b"z", depends_on=[futs[d]])
            assert await later == b"a+b+c+a+z"
            total = await client.scatter_gather("double", range(10), "sum")
            assert await total == 90
            joined = await client.scatter_gather("echo", [b"x", b"y", b"z"], "concat", b"!")
            assert await joined == b"x+y+z+!"

    run(go())


def test_a_graph_of_one_kind_hands_each_task_its_dependencies_outputs(
    cluster: InProcessSwarm,
) -> None:
    """One kind and no other options: the SDK sends the graph in the column form, dependencies
    included (SessionOpened.column_depends_on); the outputs are those of the row form."""

    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            g = Graph()
            a = g.add("concat", b"a")
            b = g.add("concat", b"b", depends_on=[a])
            c = g.add("concat", b"c", depends_on=[a])
            d = g.add("concat", b"d", depends_on=[c, b])
            chain = [d]
            for i in range(50):
                chain.append(g.add("concat", b"%d" % i, depends_on=[chain[-1]]))
            futs = await client.submit_graph(g)
            assert await futs[d] == b"a+c+a+b+d"
            assert await futs[chain[-1]] == b"+".join(
                [b"a+c+a+b+d", *(b"%d" % i for i in range(50))]
            )
            assert await futs[b] == b"a+b"

    run(go())


def test_a_dependency_on_an_unknown_task_is_rejected_with_its_field(
    cluster: InProcessSwarm,
) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            fut = await client.submit("echo", b"x", depends_on=["no-such-task"])
            with pytest.raises(Rejected) as info:
                await fut
            assert info.value.field == "tasks[0].depends_on[0]"
            assert await (await client.submit("echo", b"still fine")) == b"still fine"

    run(go())


def test_submitting_an_id_again_gives_the_same_task(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            first = await client.submit("sleep", 50, id="same-id")
            again = await client.submit("sleep", 50, id="same-id")
            assert again is first
            assert await first == 50

    run(go())


def test_vote_returns_the_majority_answer(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            vote = await client.vote("double", 4, replicas=5)
            assert (vote.value, vote.votes, vote.total, vote.failed) == (8, 5, 5, 0)
            assert vote.majority and set(vote.hosts) <= {"h0", "h1"} and vote.hosts
            with pytest.raises(TaskFailed):
                await client.vote("fail", b"no", replicas=3)

    run(go())


def test_status_lists_hosts_agents_and_counts(cluster: InProcessSwarm) -> None:
    async def go() -> None:
        async with AsyncClient(cluster.address) as client:
            status = await client.status()
            assert sorted(h.host_id for h in status.hosts) == ["h0", "h1"]
            assert all(h.state == "ACTIVE" and "echo" in h.kinds for h in status.hosts)
            assert status.agents == 2 * AGENTS
            assert status.uptime_s > 0 and "SUCCEEDED" in status.tasks

    run(go())


# -- sync client -----------------------------------------------------------------------------


def test_sync_client_has_the_same_surface(cluster: InProcessSwarm) -> None:
    with Client(cluster.address) as client:
        fut = client.submit("echo", b"hi")
        assert fut.result(timeout=10) == b"hi" and fut.done() and fut.attempts == 1
        futs = client.map("double", [1, 2, 3])
        assert client.gather(futs) == [2, 4, 6]
        assert sorted(f.result() for f in client.as_completed(futs, timeout=10)) == [2, 4, 6]
        dep = client.submit("concat", b"b", depends_on=[client.submit("sleep", 20)])
        assert dep.result(timeout=10) == b"20+b"
        g = Graph()
        a = g.add("echo", b"a")
        c = g.add("concat", depends_on=[a], decode=False)
        assert client.submit_graph(g)[c].result(timeout=10) == b"a"
        assert client.scatter_gather("double", [1, 2], "sum").result(timeout=10) == 6
        assert client.vote("echo", b"v", replicas=3).votes == 3
        assert len(client.status().hosts) == 2
        slow = client.submit("sleep", 60_000)
        with pytest.raises(DeadlineExceeded):
            slow.result(timeout=0.05)
        assert client.cancel(slow) == {slow.id: "CANCELLED"}
        with pytest.raises(TaskCancelled):
            slow.result(timeout=10)
        with pytest.raises(TaskFailed, match="boom"):
            client.submit("fail", b"boom").result(timeout=10)


def test_sync_client_called_from_a_running_loop_fails_fast(cluster: InProcessSwarm) -> None:
    with Client(cluster.address) as client:
        fut = client.submit("echo", b"x")

        async def misuse() -> None:
            with pytest.raises(RuntimeError, match="AsyncClient"):
                client.submit("echo", b"y")
            with pytest.raises(RuntimeError, match="AsyncClient"):
                fut.result()

        asyncio.run(asyncio.wait_for(misuse(), 10))
        assert fut.result(timeout=10) == b"x"  # still usable from plain code
