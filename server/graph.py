"""Dependency graphs at submission: unknown ids and cycles are refused before anything changes."""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping, Sequence

from swarm.server.keys import split_key
from swarm.server.model import FailureReason, Rejected, Task, TaskError


def check_graph(
    tasks: Sequence[Task],
    dep_keys: Sequence[Sequence[str]],
    new_index: dict[str, int],
    known: Mapping[str, Task],
) -> tuple[list[Task], set[int]]:
    """Refuse unknown dependencies and cycles; return the new tasks in topological order, and
    the indices of those that depend on a known task (one outside the batch)."""
    # First pass, the usual case: every in-batch parent comes before its child (the SDK's
    # order), so the batch is topological already and has no cycle. Only ids are looked up.
    ordered = True
    external: set[int] = set()
    for i in new_index.values():
        for dep in dep_keys[i]:
            parent = new_index.get(dep)
            if parent is None:
                external.add(i)
                if dep not in known:
                    j = list(dep_keys[i]).index(dep)
                    name = split_key(dep)[1]
                    raise Rejected(
                        "INVALID_ARGUMENT",
                        f"tasks[{i}].depends_on[{j}]",
                        f"task {tasks[i].id!r} depends on unknown task {name!r}",
                    )
            elif parent >= i:
                ordered = False
    if ordered:
        return [tasks[i] for i in new_index.values()], external
    children: dict[int, list[int]] = {}
    indegree: dict[int, int] = {}
    for i in new_index.values():
        indegree.setdefault(i, 0)
        for dep in dep_keys[i]:
            parent = new_index.get(dep)
            if parent is not None:
                children.setdefault(parent, []).append(i)
                indegree[i] = indegree.get(i, 0) + 1
    ready = deque(sorted(i for i, d in indegree.items() if d == 0))
    order: list[int] = []
    while ready:  # Kahn's algorithm, FIFO so that submission order is kept where it can be
        i = ready.popleft()
        order.append(i)
        for c in children.get(i, ()):
            indegree[c] -= 1
            if indegree[c] == 0:
                ready.append(c)
    if len(order) < len(new_index):
        stuck = min(i for i, d in indegree.items() if d > 0)
        raise Rejected(
            "INVALID_ARGUMENT",
            f"tasks[{stuck}].depends_on",
            f"task {tasks[stuck].id!r} is part of a dependency cycle",
        )
    return [tasks[i] for i in order], external


def dependency_error(failed: Task) -> TaskError:
    return TaskError(
        FailureReason.DEPENDENCY_FAILED,
        "DependencyFailed",
        f"dependency {failed.id!r} ended {failed.state.name}",
    )
