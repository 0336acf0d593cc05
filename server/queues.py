"""Ready queues: per kind, FIFO within a priority, higher priority first.

Removal is lazy: a cancelled or timed-out task stays in its deque and is skipped when popped,
so cancelling is O(1). `live` counts only the tasks that are really waiting. Besides the bulk
buckets there are two lanes for suspects (see suspects.py): isolated tasks, placed one by one,
and groups, each spread over hosts. A task is in the isolated lane while `is_special` holds for
it and in a group while `task.group` is set; `live` counts both lanes too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from swarm.server.model import Task, TaskState
from swarm.server.suspects import Group


class ReadyQueue:
    __slots__ = (
        "_buckets",
        "_priorities",
        "grouped_live",
        "groups",
        "isolated",
        "isolated_live",
        "live",
    )

    def __init__(self) -> None:
        self._buckets: dict[int, deque[Task]] = {}
        self._priorities: list[int] = []  # sorted high to low
        self.live = 0  # all waiting tasks, isolated ones included
        # Suspected poison tasks: each host runs at most one of them at a time.
        self.isolated: deque[Task] = deque()
        self.isolated_live = 0
        # Groups of one death's suspects, oldest first (core_dispatch.py spreads each).
        self.groups: deque[Group] = deque()
        self.grouped_live = 0

    @property
    def bulk_live(self) -> int:
        return self.live - self.isolated_live - self.grouped_live

    def push_isolated(self, task: Task) -> None:
        self.isolated.append(task)
        self.isolated_live += 1
        self.live += 1

    def pop_isolated(self) -> Task | None:
        queued = TaskState.QUEUED
        while self.isolated:
            task = self.isolated.popleft()
            if task.state is queued:
                self.isolated_live -= 1
                self.live -= 1
                return task
        return None

    def release_isolated(self, special: Callable[[Task], bool]) -> None:
        """Move isolated tasks that are no longer special (their blame was explained) to the
        front of the bulk queue. Per quarantine, not per task."""
        keep: deque[Task] = deque()
        queued = TaskState.QUEUED
        for task in self.isolated:
            if task.state is not queued:
                continue
            if special(task):
                keep.append(task)
            else:
                self.isolated_live -= 1
                self._bucket(task.priority).appendleft(task)
        self.isolated = keep

    def push_grouped(self, task: Task, group: Group) -> None:
        task.group = group
        group.tasks.append(task)
        group.live += 1
        self.grouped_live += 1
        self.live += 1
        if not group.queued:
            group.queued = True
            self.groups.append(group)

    def pop_grouped(self, group: Group, n: int) -> list[Task]:
        out: list[Task] = []
        tasks = group.tasks
        queued = TaskState.QUEUED
        while tasks and len(out) < n:
            task = tasks.popleft()
            if task.state is queued and task.group is group:
                task.group = None
                out.append(task)
        group.live -= len(out)
        self.grouped_live -= len(out)
        self.live -= len(out)
        return out

    def drop_empty_groups(self) -> None:
        if any(g.live <= 0 for g in self.groups):
            for g in [g for g in self.groups if g.live <= 0]:
                g.queued = False
                g.tasks.clear()
            self.groups = deque(g for g in self.groups if g.live > 0)

    def _bucket(self, priority: int) -> deque[Task]:
        bucket = self._buckets.get(priority)
        if bucket is None:
            bucket = self._buckets[priority] = deque()
            self._priorities.append(priority)
            self._priorities.sort(reverse=True)
        return bucket

    def push(self, task: Task) -> None:
        self._bucket(task.priority).append(task)
        self.live += 1

    def push_many(self, tasks: list[Task], priority: int) -> None:
        """push() for each of tasks, all of that priority, in order."""
        self._bucket(priority).extend(tasks)
        self.live += len(tasks)

    def push_front(self, task: Task) -> None:
        """Requeue ahead of newer work (a task that lost its host has waited longest)."""
        self._bucket(task.priority).appendleft(task)
        self.live += 1

    def pop(self, n: int) -> list[Task]:
        out: list[Task] = []
        append = out.append
        queued = TaskState.QUEUED
        need = n
        for priority in self._priorities:
            popleft = self._buckets[priority].popleft
            try:
                while need:
                    task = popleft()
                    if task.state is queued:
                        append(task)
                        need -= 1
            except IndexError:  # this bucket is empty: on to the next priority
                continue
            break
        self.live -= len(out)
        self._drop_empty()
        return out

    def _drop_empty(self) -> None:
        if all(self._buckets[p] for p in self._priorities):
            return
        for p in [p for p in self._priorities if not self._buckets[p]]:
            del self._buckets[p]
            self._priorities.remove(p)

    @property
    def top_priority(self) -> int:
        return self._priorities[0] if self._priorities else 0
