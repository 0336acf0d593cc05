"""Built-in kinds that harm (issue 9, defect 5): `crash` ends its host and `burn` holds the event
loop, so a host serves them only when asked (`swarm host --unsafe-test-kinds`, `swarm up
--unsafe-test-kinds`, `handlers.load(..., test_kinds=True)`); otherwise any client could take
every host down. Tests and benchmarks ask for them."""

from __future__ import annotations

from swarm.agent_host import handlers
from swarm.cli.main import build_parser
from swarm.cli.up import spec_from
from swarm.v1 import types_pb2

from tests.helpers import eventually, local_swarm
from tests.raw_client import RawClient, spec

SAFE = {"echo", "fail", "sleep"}
HARMFUL = {"burn", "crash"}


def test_harmful_kinds_are_loaded_only_when_asked_for() -> None:
    assert set(handlers.load([]).kinds) == SAFE
    assert set(handlers.load([], test_kinds=True).kinds) == SAFE | HARMFUL
    assert set(handlers.load([], builtins=False, test_kinds=True).kinds) == HARMFUL


def test_swarm_up_passes_the_flag_to_its_hosts() -> None:
    parser = build_parser()
    assert not spec_from(parser.parse_args(["up"])).test_kinds
    assert spec_from(parser.parse_args(["up", "--unsafe-test-kinds"])).test_kinds
    assert parser.parse_args(["host", "--unsafe-test-kinds"]).unsafe_test_kinds


def test_a_host_serves_crash_and_burn_only_with_the_flag() -> None:
    with (
        local_swarm(hosts=1, agents_per_host=5, test_kinds=False) as c,
        RawClient(c.address) as client,
    ):
        (h0,) = c.active_hosts()
        assert set(h0.kinds) == SAFE
        client.submit_ok([spec("kill-them-all", "crash")])
        crash = eventually(
            lambda: next((q for q in c.status().queues if q.kind == "crash"), None),
            5,
            what="the crash task queued",
        )
        assert crash.waiting_for_host and crash.queued == 1
        # A host started with the flag serves it: the queued crash task ends that host (exit
        # code 70 is crash's own), and h0 lives on.
        index = c.add_host("--unsafe-test-kinds", host_id="unsafe")
        pid = eventually(lambda: c.host_pids[index], 10, what="the unsafe host's pid")
        assert c.host_exit(pid, 30) == 70
        eventually(lambda: len(c.active_hosts()) == 1, 10, what="the unsafe host gone")
        assert [(h.pid, h.state) for h in c.active_hosts()] == [(h0.pid, types_pb2.ACTIVE)]
        assert c.host_pids[0] == h0.pid
