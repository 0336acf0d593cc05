"""A dependency graph built in memory and submitted in one call.

Nodes can only depend on nodes added before them (or on tasks submitted earlier), so a graph is
acyclic by construction and its insertion order is already a valid submission order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from swarm.client._codec import Codec, encode_payload
from swarm.client._errors import Rejected
from swarm.client._future import TaskFuture
from swarm.client._session import Session


class Node:
    """One task of a `Graph`; pass it in another node's `depends_on`.

    After `submit_graph`, the mapping it returns gives each node's `TaskFuture`.
    """

    __slots__ = ("decode", "depends_on", "graph", "id", "index", "kind", "options", "payload")

    def __init__(
        self,
        graph: Graph,
        index: int,
        kind: str,
        payload: object,
        depends_on: tuple[Node | TaskFuture | str, ...],
        task_id: str | None,
        options: dict[str, Any],
        decode: bool | None,
    ) -> None:
        self.graph = graph
        self.index = index
        self.kind = kind
        self.payload = payload
        self.depends_on = depends_on
        self.id = task_id  # None: the SDK picks one at submission
        self.options = options
        self.decode = decode

    def __repr__(self) -> str:
        return f"<Node {self.index} {self.kind}{' ' + self.id if self.id else ''}>"


class Graph:
    """Tasks that refer to one another, submitted together with `client.submit_graph`.

    ```python
    g = Graph()
    fetch = [g.add("fetch", {"url": u}) for u in urls]
    merged = g.add("merge", depends_on=fetch)      # its handler gets every fetch output in ctx.deps
    report = g.add("report", {"title": "t"}, depends_on=[merged], timeout=30)
    futures = await client.submit_graph(g)
    print(await futures[report])
    ```

    Validation happens here, before anything is sent: a dependency must be a node of this graph
    (so added earlier), a `TaskFuture`, or a task id; explicit ids must be unique.
    """

    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self.nodes)

    def add(
        self,
        kind: str,
        payload: object = None,
        *,
        depends_on: Iterable[Node | TaskFuture | str] = (),
        id: str | None = None,
        priority: int = 0,
        timeout: float | None = None,
        max_retries: int | None = None,
        labels: Mapping[str, str] | None = None,
        decode: bool | None = None,
    ) -> Node:
        """Add a task and return its node. Arguments are those of `AsyncClient.submit`."""
        # The hot path of a large graph: no per-node work beyond the checks (error strings
        # are made only on error).
        index = len(self.nodes)
        if type(kind) is not str or not kind:
            raise Rejected("kind must be a non-empty string", field=f"nodes[{index}].kind")
        deps = depends_on if type(depends_on) is tuple else tuple(depends_on)
        for dep in deps:
            if type(dep) is not Node or dep.graph is not self:
                self._check_dep(index, deps)
                break
        if id is not None:
            if not isinstance(id, str) or not id:
                raise Rejected("id must be a non-empty string", field=f"nodes[{index}].id")
            if id in self._ids:
                raise Rejected(
                    f"id {id!r} is already used in this graph", field=f"nodes[{index}].id"
                )
            self._ids.add(id)
        if priority or timeout is not None or max_retries is not None or labels:
            options = task_options(priority, timeout, max_retries, labels)
        else:
            options = _NO_OPTIONS
        node = Node(self, index, kind, payload, deps, id, options, decode)
        self.nodes.append(node)
        return node

    def _check_dep(self, index: int, deps: tuple[object, ...]) -> None:
        """Raise for the first dependency that is neither a node of this graph, a future nor a
        task id (the slow path of `add`)."""
        for j, dep in enumerate(deps):
            field = f"nodes[{index}].depends_on[{j}]"
            if isinstance(dep, Node):
                if dep.graph is not self:
                    raise Rejected("depends on a node of another graph", field=field)
            elif not isinstance(dep, TaskFuture | str) or not dep:
                raise Rejected(
                    "a dependency must be a Node, a TaskFuture or a task id", field=field
                )


_NO_OPTIONS: dict[str, Any] = {}  # shared by every node without options: never mutated


def task_options(
    priority: int, timeout: float | None, max_retries: int | None, labels: Mapping[str, str] | None
) -> dict[str, Any]:
    """The TaskSpec fields beyond id, kind and payload that differ from their defaults."""
    opts: dict[str, Any] = {}
    if priority:
        opts["priority"] = priority
    if timeout is not None:
        if timeout <= 0:
            raise Rejected("timeout must be positive (seconds)", field="timeout")
        opts["timeout_s"] = float(timeout)
    if max_retries is not None:
        if max_retries < 0:
            raise Rejected("max_retries must be >= 0", field="max_retries")
        opts["max_retries"] = max_retries
    if labels:
        opts["labels"] = dict(labels)
    return opts


def graph_futures(
    graph: Graph, session: Session, codec: Codec, new_id: Callable[[], str]
) -> tuple[dict[Node, TaskFuture], list[TaskFuture]]:
    """Each node's future, and the fresh ones to enqueue (in order; dependencies first).

    A node whose explicit id is already in flight on this client gets that task's future.
    """
    futs: dict[Node, TaskFuture] = {}
    fresh: list[TaskFuture] = []
    inflight = session.inflight
    for node in graph.nodes:
        task_id = node.id
        if task_id is not None:
            existing = inflight.get(task_id)
            if existing is not None:
                futs[node] = existing
                continue
        payload = node.payload
        if type(payload) is bytes:
            data, decodes = payload, False
        else:
            data, decodes = encode_payload(codec, payload, f"nodes[{node.index}].payload")
        opts: dict[str, Any] | None = node.options or None
        if node.depends_on:
            ids = [
                futs[d].id if type(d) is Node else d.id if isinstance(d, TaskFuture) else d
                for d in node.depends_on
            ]
            opts = {**opts, "depends_on": ids} if opts else {"depends_on": ids}
        fut = TaskFuture(
            session,
            task_id or new_id(),
            node.kind,
            data,
            decodes if node.decode is None else node.decode,
            opts,
        )
        futs[node] = fut
        fresh.append(fut)
    return futs, fresh
