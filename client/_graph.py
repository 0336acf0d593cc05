"""A dependency graph built in memory and submitted in one call.

Nodes can only depend on nodes added before them (or on tasks submitted earlier), so a graph is
acyclic by construction and its insertion order is already a valid submission order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from numbers import Real
from typing import Any

from swarm.client._codec import Codec
from swarm.client._errors import Rejected
from swarm.client._future import TaskFuture, node_futures
from swarm.client._session import Session


class Node:
    """One task of a `Graph`; pass it in another node's `depends_on`.

    After `submit_graph`, the mapping it returns gives each node's `TaskFuture`.
    """

    __slots__ = ("decode", "depends_on", "graph_token", "id", "index", "kind", "options", "payload")

    def __init__(
        self,
        graph_token: object,
        index: int,
        kind: str,
        payload: object,
        depends_on: tuple[Node | TaskFuture | str, ...],
        task_id: str | None,
        options: dict[str, Any],
        decode: bool | None,
    ) -> None:
        self.graph_token = graph_token  # its graph's `_token` (see Graph.__init__)
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
        # What its nodes name it by. Were it the graph itself, a graph and its nodes would form a
        # reference cycle, and every graph dropped would wait for the garbage collector (a full
        # collection, once enough have piled up) instead of being freed when its last use ends.
        self._token = object()

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
        if type(kind) is not str or not kind or not kind.isprintable():
            check_text(kind, f"nodes[{index}].kind")
        if type(depends_on) is tuple:
            deps = depends_on
        elif type(depends_on) is list:
            deps = tuple(depends_on)
        else:
            deps = check_deps(depends_on, f"nodes[{index}].depends_on")
        token = self._token
        for dep in deps:
            if type(dep) is not Node or dep.graph_token is not token:
                self._check_dep(index, deps)
                break
        if id is not None:
            check_text(id, f"nodes[{index}].id")
            if id in self._ids:
                raise Rejected(
                    f"id {id!r} is already used in this graph", field=f"nodes[{index}].id"
                )
            self._ids.add(id)
        if priority or timeout is not None or max_retries is not None or labels:
            options = task_options(priority, timeout, max_retries, labels)
        else:
            options = _NO_OPTIONS
        node = Node(token, index, kind, payload, deps, id, options, decode)
        self.nodes.append(node)
        return node

    def _check_dep(self, index: int, deps: tuple[object, ...]) -> None:
        """Raise for the first dependency that is neither a node of this graph, a future nor a
        task id (the slow path of `add`)."""
        for j, dep in enumerate(deps):
            field = f"nodes[{index}].depends_on[{j}]"
            if isinstance(dep, Node):
                if dep.graph_token is not self._token:
                    raise Rejected("depends on a node of another graph", field=field)
            elif isinstance(dep, str):
                check_text(dep, field)
            elif not isinstance(dep, TaskFuture):
                raise Rejected(
                    "a dependency must be a Node, a TaskFuture or a task id", field=field
                )


_NO_OPTIONS: dict[str, Any] = {}  # shared by every node without options: never mutated


_INT32 = 2**31


def task_options(
    priority: int, timeout: float | None, max_retries: int | None, labels: Mapping[str, str] | None
) -> dict[str, Any]:
    """The TaskSpec fields beyond id, kind and payload that differ from their defaults.

    Checked here, at the call, for everything the wire could not carry (a wrong type, a
    number out of its field's range, a string that is not text): such a value raises Rejected
    naming its argument, before anything is queued. What the wire carries but the orchestrator
    refuses (types.proto, TaskSpec: lengths, ranges) comes back as the task's Rejected.
    """
    opts: dict[str, Any] = {}
    if priority:
        if not isinstance(priority, int) or not -_INT32 <= priority < _INT32:
            raise Rejected("priority must be an int32 (higher runs first)", field="priority")
        opts["priority"] = int(priority)
    if timeout is not None:
        if not isinstance(timeout, Real) or not 0 < timeout < math.inf:
            raise Rejected("timeout must be a positive, finite number of seconds", field="timeout")
        opts["timeout_s"] = float(timeout)
    if max_retries is not None:
        if not isinstance(max_retries, int) or not 0 <= max_retries < 2 * _INT32:
            raise Rejected("max_retries must be an int >= 0", field="max_retries")
        opts["max_retries"] = int(max_retries)
    if labels:
        if not isinstance(labels, Mapping):
            raise Rejected("labels must be a mapping of str to str", field="labels")
        opts["labels"] = dict(labels)
        for key, value in opts["labels"].items():
            check_text(key, f"labels[{key!r}]")
            check_text(value, f"labels[{key!r}]", empty=True)
    return opts


def check_text(value: object, field: str, *, empty: bool = False) -> str:
    """`value` as a string field of the wire takes it: a str of printable characters (none
    of a lone surrogate, which UTF-8 cannot encode), non-empty unless `empty`."""
    if not isinstance(value, str) or not (value or empty) or not value.isprintable():
        what = "a string" if empty else "a non-empty string"
        raise Rejected(f"expected {what} of printable characters, got {value!r:.80}", field=field)
    return value


def check_deps(deps: object, field: str) -> tuple[Any, ...]:
    """`depends_on` as given to `submit` or `Graph.add`: an iterable of dependencies, but not a
    bare string (its characters would be read as ids)."""
    if isinstance(deps, str | bytes):
        raise Rejected("depends_on must be a list of dependencies, not a string", field=field)
    if type(deps) is tuple:
        return deps
    if not isinstance(deps, Iterable):
        raise Rejected("depends_on must be a list of dependencies", field=field)
    return tuple(deps)


def graph_futures(
    graph: Graph, session: Session, codec: Codec, new_ids: Callable[[int], list[str]]
) -> tuple[dict[Node, TaskFuture], list[TaskFuture]]:
    """Each node's future, and the fresh ones to enqueue (in order; dependencies first).

    A node whose explicit id is already in flight on this client gets that task's future. The
    loop is `_future.node_futures`, compiled with the futures it makes.
    """
    nodes = graph.nodes
    # The ids made in one call; a node with its own id leaves its one unused.
    return node_futures(nodes, session, session.inflight, codec, new_ids(len(nodes)))
