"""Whatever a handler raises or returns ends that attempt as a handler error, and the host lives
on (issue 9, defect 4): on a real host process, for async handlers (eager first step and after a
suspension) and plain `def` ones (thread pool). Only a real process death takes a host down."""

from __future__ import annotations

from swarm.v1 import types_pb2

from tests.helpers import eventually, local_swarm
from tests.hostile_handlers import MISDEEDS
from tests.raw_client import RawClient, spec

KINDS = ("hostile", "hostile_eager", "hostile_def")


def test_whatever_a_handler_raises_is_a_handler_error_and_the_host_lives_on() -> None:
    cases = [(kind, misdeed) for kind in KINDS for misdeed in MISDEEDS]
    # Fewer agents than cases: a case that never frees its agent starves those behind it.
    with (
        local_swarm(hosts=1, agents_per_host=2, modules=["tests.hostile_handlers"]) as c,
        RawClient(c.address) as client,
    ):
        pid = c.host_pids[0]
        ids = [f"{kind}:{misdeed}" for kind, misdeed in cases]
        client.submit_ok([spec(i, k, m.encode()) for i, (k, m) in zip(ids, cases, strict=True)])
        try:
            results = client.wait_results(len(ids), 30)
        finally:
            missing = [i for i in ids if i not in client.results]
            assert not missing, f"no result for {missing}\n{c.logs()}"
        wrong = {
            i: (types_pb2.TaskState.Name(r.state), r.error.reason, r.error.type, r.error.message)
            for i, r in results.items()
            if r.state != types_pb2.FAILED or r.error.reason != types_pb2.HANDLER_ERROR
        }
        assert not wrong, wrong
        # Each description names the type; the message is there or a placeholder says why not.
        assert results["hostile:bad_str"].error.type == "_BadStr"
        assert "str()" in results["hostile_def:bad_str"].error.message
        assert results["hostile_def:system_exit"].error.type == "SystemExit"
        assert results["hostile:system_exit"].error.message == "3"
        assert "_Custom" in results["hostile_eager:custom_base"].error.traceback
        assert "surrogate" in results["hostile:surrogate"].error.message
        # The same process, every agent free again, and it runs the next task.
        client.submit_ok([spec("after", "echo", b"still here")])
        assert client.wait_results(len(ids) + 1, 10)["after"].output == b"still here"
        assert c.host_pids[0] == pid
        host = eventually(
            lambda: next((h for h in c.status().hosts if h.running == 0 and h.free == 2), None),
            5,
            what="the host's agents all free",
        )
        assert host.pid == pid and host.state == types_pb2.ACTIVE
        client.assert_exactly_once([*ids, "after"])
