"""Messages bounded by bytes, end to end over real gRPC: a fan-in over the message limit, large
results for one client, a handler output over the limit, and budget refusals."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
import pytest
from swarm.client import Client
from swarm.client._errors import Rejected, TaskFailed
from swarm.common.grpc_options import CHANNEL_OPTIONS
from swarm.deploy.inproc import InProcessSwarm
from swarm.server.config import OrchestratorConfig
from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.raw_client import spec

MIB = 1024 * 1024
BIG = 15 * MIB


def big_stub(swarm: InProcessSwarm) -> tuple[grpc.Channel, task_pb2_grpc.TaskServiceStub]:
    # The default client limit is 4 MiB: this test client sends and reads 15 MiB messages.
    channel = grpc.insecure_channel(swarm.address, options=CHANNEL_OPTIONS)
    return channel, task_pb2_grpc.TaskServiceStub(channel)


def test_a_fan_in_over_the_message_limit_fails_too_large_and_loses_no_host() -> None:
    with InProcessSwarm(hosts=2, agents_per_host=4) as swarm, Client(swarm.address) as client:
        parts = [client.submit("echo", b"p" * BIG, id=f"p{i}", decode=False) for i in range(5)]
        fan = client.submit("echo", b"", id="fan", depends_on=parts)
        assert [len(p.result(timeout=60)) for p in parts] == [BIG] * 5
        with pytest.raises(TaskFailed) as exc:
            fan.result(timeout=30)
        assert exc.value.reason == "TOO_LARGE" and str(5 * BIG) in str(exc.value)
        # Known at submit now: refused (INVALID_ARGUMENT), naming the field and the total.
        with pytest.raises(Rejected) as refused:
            client.submit("echo", b"", id="fan2", depends_on=parts).result(timeout=30)
        assert refused.value.field == "tasks[0].depends_on" and str(5 * BIG) in str(refused.value)
        status = swarm.status()
        assert status.hosts_lost == 0
        assert all(h.state == types_pb2.ACTIVE for h in status.hosts)


def test_results_over_the_message_limit_reach_a_client_in_several_batches() -> None:
    with InProcessSwarm(hosts=1, agents_per_host=5) as swarm:
        channel, stub = big_stub(swarm)
        with channel:
            ids = [f"r{i}" for i in range(5)]
            for i in ids:  # one request each: five would be over the message limit
                stub.Submit(
                    task_pb2.SubmitRequest(client_id="reader", tasks=[spec(i, "echo", b"r" * BIG)])
                )
            for i in ids:
                stub.Wait(task_pb2.WaitRequest(task_ids=[i], timeout_s=60))
            with pytest.raises(grpc.RpcError) as exc:  # one unary reply: refused, not broken
                stub.GetTasks(task_pb2.GetTasksRequest(task_ids=ids))
            assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "task_ids" in (exc.value.details() or "")
            # The Session of the client that submitted them: its results come in batches.
            out: queue.Queue[task_pb2.ClientMessage | None] = queue.Queue()
            out.put(task_pb2.ClientMessage(open=task_pb2.OpenSession(client_id="reader")))

            def requests() -> Iterator[task_pb2.ClientMessage]:
                while (msg := out.get()) is not None:
                    yield msg

            call = stub.Session(requests(), timeout=60)
            got: list[int] = []
            batches = 0
            for msg in call:
                if msg.WhichOneof("msg") == "results":
                    batches += 1
                    got += [len(r.output) for r in msg.results.results]
                    if len(got) == 5:
                        break
            out.put(None)
            call.cancel()
            assert got == [BIG] * 5 and batches > 1


def test_a_handler_output_over_the_limit_is_a_handler_error_not_a_lost_host() -> None:
    with InProcessSwarm(hosts=1, agents_per_host=2, modules=["tests.handlers_for_tests"]) as swarm:
        with Client(swarm.address) as client:
            fut = client.submit("big_output", str(17 * MIB).encode(), max_retries=1)
            with pytest.raises(TaskFailed) as exc:
                fut.result(timeout=60)
            assert exc.value.reason == "HANDLER_ERROR" and "OutputTooLarge" in str(exc.value)
            assert client.submit("echo", b"ok").result(timeout=30) == b"ok"
        assert swarm.status().hosts_lost == 0


def test_submit_past_the_payload_budget_is_resource_exhausted_naming_it() -> None:
    config = OrchestratorConfig(max_task_bytes=1000)
    with InProcessSwarm(hosts=1, agents_per_host=1, config=config) as swarm:
        swarm.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("a", "nohost", b"x" * 600)]))
        with pytest.raises(grpc.RpcError) as exc:
            swarm.stub.Submit(task_pb2.SubmitRequest(tasks=[spec("b", "nohost", b"x" * 600)]))
        assert exc.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "payload bytes" in (exc.value.details() or "")
