"""The exactly-once invariant, checked after a chaos run over every submitter at once.

For every accepted task: exactly one final state (the orchestrator's, and every delivery of it
carries that one); each submitter was delivered its result, at most once per session, and
exactly once in all when it never reconnected (a reconnecting one is sent again, once, what it
had not had acknowledged: redeliveries across sessions are counted, not refused); and the value
is the right one. `check` returns the figures and `Figures.assert_ok` fails on any breach.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from swarm.v1 import task_pb2, task_pb2_grpc, types_pb2

from tests.raw_client import RawClient

FINAL = (types_pb2.SUCCEEDED, types_pb2.FAILED, types_pb2.CANCELLED)


@dataclass
class Figures:
    tasks: int = 0
    deliveries: int = 0
    duplicates: int = 0  # a result delivered twice on one session: always a bug
    redelivered: int = 0  # delivered again on a later session of the same client (allowed)
    lost: int = 0  # a submitter never got the result, or the task has no final state
    wrong: int = 0  # a delivered value the check refuses, or two different final results
    examples: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        if len(self.examples) < 10:
            self.examples.append(what)

    def assert_ok(self) -> None:
        assert (self.duplicates, self.lost, self.wrong) == (0, 0, 0), self

    def line(self) -> str:
        return (
            f"{self.tasks} tasks, {self.deliveries} deliveries: {self.duplicates} duplicates "
            f"within a session, {self.redelivered} redelivered after a reconnect, "
            f"{self.lost} lost, {self.wrong} wrong"
        )


def _final_results(
    stub: task_pb2_grpc.TaskServiceStub, ids: Sequence[str]
) -> dict[str, task_pb2.TaskInfo]:
    out: dict[str, task_pb2.TaskInfo] = {}
    for i in range(0, len(ids), 5000):
        reply = stub.GetTasks(task_pb2.GetTasksRequest(task_ids=ids[i : i + 5000]), timeout=30)
        out.update((t.task_id, t) for t in reply.tasks)
    return out


def _same(a: types_pb2.TaskResult, b: types_pb2.TaskResult) -> bool:
    return (a.state, a.output, a.error.reason, a.attempts) == (
        b.state,
        b.output,
        b.error.reason,
        b.attempts,
    )


def check(
    stub: task_pb2_grpc.TaskServiceStub,
    submitters: Mapping[RawClient, Sequence[str]],
    value_ok: Callable[[str, types_pb2.TaskResult], bool],
) -> Figures:
    """Check the invariant for every id each client submitted (accepted) and return figures."""
    ids = sorted({i for submitted in submitters.values() for i in submitted})
    finals = _final_results(stub, ids)
    fig = Figures(tasks=len(ids))
    for task_id in ids:
        info = finals[task_id]
        if info.state not in FINAL:
            fig.lost += 1
            fig.note(f"{task_id}: no final state ({info.state})")
        elif not value_ok(task_id, info.result):
            fig.wrong += 1
            fig.note(f"{task_id}: final result refused: {info.result}")
    for client, submitted in submitters.items():
        for task_id in submitted:
            per_session = [s[task_id] for s in client.sessions]
            total = sum(per_session)
            fig.deliveries += total
            if total == 0:
                fig.lost += 1
                fig.note(f"{client.client_id} never got {task_id}")
                continue
            fig.duplicates += sum(n - 1 for n in per_session if n > 1)
            fig.redelivered += sum(1 for n in per_session if n) - 1
            if max(per_session) > 1:
                fig.note(f"{client.client_id} got {task_id} {per_session} times per session")
            result = client.results[task_id]
            final = finals[task_id]
            if final.state in FINAL and not _same(result, final.result):
                fig.wrong += 1
                fig.note(f"{client.client_id}: {task_id} delivered {result}, final {final}")
    return fig
