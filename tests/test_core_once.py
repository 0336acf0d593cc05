"""Exactly once in the no-I/O core: one result per session, every submitter a watcher, one
content per id (issue 9, defects 1-3)."""

from __future__ import annotations

import pytest
from swarm.server.model import Rejected, Task, TaskState

from tests.core_helpers import join, make_core, ok, submit, take


def keys(tasks: list[Task]) -> list[str]:
    return [t.key for t in tasks]


def test_a_result_is_queued_once_per_session_whatever_reopens_and_resubmits() -> None:
    """Defect 1: a duplicate submit of a finished task queued its result again on a session
    that had been sent it already (reopen: 5 results; resubmit: the same 5 again)."""
    core = make_core()
    host = join(core, "h")
    ids = [f"t{i}" for i in range(5)]
    outbox = core.attach_client("c", 0.0)
    submit(core, *[(i, "echo") for i in ids])
    ok(core, host, take(host))
    assert keys(core.take_results(outbox, 100)) == ids
    core.detach_client(outbox, 1.0)  # dropped without an ack
    outbox = core.attach_client("c", 2.0)
    assert keys(core.take_results(outbox, 100)) == ids  # the reopened session gets them once
    submit(core, *[(i, "echo") for i in ids])  # ... and resubmits what it has no result for
    submit(core, *[(i, "echo") for i in ids])
    assert core.take_results(outbox, 100) == []
    # Resubmitted before the session took them: still queued once.
    core.detach_client(outbox, 3.0)
    outbox = core.attach_client("c", 4.0)
    submit(core, *[(i, "echo") for i in ids])
    assert keys(core.take_results(outbox, 100)) == ids
    assert core.take_results(outbox, 100) == []


def test_an_acknowledged_result_asked_for_again_is_sent_again() -> None:
    """After its ack, the result has left the outbox; resubmitting the id is a new ask (the SDK
    promises that submitting an id again gives that task's result)."""
    core = make_core()
    host = join(core, "h")
    outbox = core.attach_client("c", 0.0)
    submit(core, ("t", "echo"))
    ok(core, host, take(host))
    assert keys(core.take_results(outbox, 10)) == ["t"]
    core.ack(outbox, ["t"])
    submit(core, ("t", "echo"))
    assert keys(core.take_results(outbox, 10)) == ["t"]


def test_every_submitter_of_an_id_gets_its_result() -> None:
    """Defect 2: a second client submitting a running task's id never got its result."""
    core = make_core()
    host = join(core, "h")
    first = core.attach_client("c1", 0.0)
    second = core.attach_client("c2", 0.0)
    submit(core, ("x", "echo"), client="c1")
    submit(core, ("x", "echo"), client="c2")  # while it runs
    submit(core, ("x", "echo"), client="c2")  # twice: still one watcher, one result
    (task,) = take(host)
    ok(core, host, [task])
    assert core.take_results(first, 10) == [task]
    assert core.take_results(second, 10) == [task]
    assert core.take_results(second, 10) == []
    # A submitter without a client id (unary Submit) leaves it to Wait; one that comes later
    # than the result gets it at once.
    submit(core, ("x", "echo"), client="")
    third = core.attach_client("c3", 0.0)
    submit(core, ("x", "echo"), client="c3")
    assert core.take_results(third, 10) == [task]


def test_watchers_per_task_are_bounded_and_a_refusal_changes_nothing() -> None:
    core = make_core(max_watchers=2)
    join(core, "h", kinds=())  # nothing runs: x stays queued
    submit(core, ("x", "echo"), client="c0")
    submit(core, ("x", "echo"), client="c1")
    submit(core, ("x", "echo"), client="c2")
    with pytest.raises(Rejected) as exc:
        submit(core, ("new", "echo"), ("x", "echo"), client="c3")
    assert exc.value.code == "RESOURCE_EXHAUSTED" and exc.value.field == "tasks[1].id"
    assert "new" not in core.tasks
    submit(core, ("x", "echo"), client="c1")  # one already watching is no new watcher


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("kind", {"kind": "other"}),
        ("payload", {"payload": b"other"}),
        ("priority", {"priority": 3}),
        ("timeout_s", {"timeout_s": 2.0}),
        ("max_retries", {"max_retries": 4}),
        ("labels", {"labels": {"a": "b"}}),
        ("schedule_timeout_s", {"schedule_timeout_s": 1.0}),
        ("non_retryable", {"non_retryable": frozenset({"ValueError"})}),
        ("depends_on", {"deps": ["d"]}),
    ],
)
def test_an_id_resubmitted_with_other_content_is_refused_naming_the_field(
    field: str, change: dict[str, object]
) -> None:
    """Defect 3: other content under a known id was answered as a duplicate and dropped."""
    core = make_core()
    host = join(core, "h")
    submit(core, ("d", "echo"))
    submit(core, ("x", "echo"))
    deps = change.pop("deps", None)
    kind = change.pop("kind", "echo")
    payload = change.pop("payload", b"x")
    again = Task("x", str(kind), payload)  # type: ignore[arg-type]
    for name, value in change.items():
        setattr(again, name, value)
    new = Task("y", "echo", b"y")
    with pytest.raises(Rejected) as exc:
        core.submit([new, again], [[], list(deps or [])], "c", 0.0)  # type: ignore[call-overload]
    assert exc.value.code == "ALREADY_EXISTS" and exc.value.field == f"tasks[1].{field}"
    assert "y" not in core.tasks and core.tasks["x"].payload == b"x"
    same = Task("x", "echo", b"x")
    assert core.submit([same], None, "c", 0.0).duplicates == ["x"]
    assert len(take(host)) == 2 and core.tasks["x"].state is TaskState.ASSIGNED
