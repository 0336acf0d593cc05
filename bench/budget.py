"""Where the CPU goes: per-process CPU time per task, and how busy the machine is otherwise.

    meter = CpuMeter({"client": os.getpid(), "orchestrator": pid, "host0": pid0})
    meter.start()
    ...                                    # run a workload of n tasks
    meter.per_task(n)     # µs per task: {"client": 4.1, "orchestrator": 8.3, ..., "wall": 9.5}

"other" is what other processes used meanwhile, in the same unit: on a shared machine it says how
far a figure can be trusted. "irq" is interrupt time, on loopback mostly the kernel moving our
own messages. Both are machine-wide.
Process CPU times tick in 10 ms steps, so a run should take a few hundred milliseconds at least.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import psutil

T = TypeVar("T")

# A run during which other processes used more than this share of the machine is run again.
NOISY = 0.10
MAX_TRIES = 4


def _machine() -> tuple[float, float]:
    """Seconds since boot that the machine's CPUs (all together) spent running processes
    (user, nice, system), and in interrupt handlers (irq, softirq: on loopback, much of it is
    the kernel moving our own messages, which no process is charged for)."""
    t = psutil.cpu_times()
    procs = float(t.user) + float(t.nice) + float(t.system)
    irq = float(getattr(t, "irq", 0.0)) + float(getattr(t, "softirq", 0.0))
    return procs, irq


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self._machine = (0.0, 0.0)
        self._wall = 0.0

    def _now(self) -> dict[str, float]:
        out = {}
        for name, proc in self.procs.items():
            try:
                t = proc.cpu_times()
                out[name] = t.user + t.system
            except psutil.NoSuchProcess:
                out[name] = self._start.get(name, 0.0)
        return out

    def start(self) -> None:
        self._start = self._now()
        self._machine = _machine()
        self._wall = time.perf_counter()

    def seconds(self) -> dict[str, float]:
        """CPU seconds per process since start(), plus "irq", "other" and "wall"."""
        now = self._now()
        out = {name: now[name] - self._start[name] for name in now}
        procs, irq = _machine()
        out["other"] = max(0.0, procs - self._machine[0] - sum(out.values()))
        out["irq"] = irq - self._machine[1]
        out["wall"] = time.perf_counter() - self._wall
        return out

    def noise(self, seconds: dict[str, float] | None = None) -> float:
        """The share of the whole machine (all cores) that others used since start()."""
        s = seconds if seconds is not None else self.seconds()
        return s["other"] / (max(s["wall"], 1e-9) * (psutil.cpu_count() or 1))

    def per_task(self, tasks: int) -> dict[str, float]:
        """Microseconds per task of each process's CPU, "other" and wall time."""
        return {name: s / tasks * 1e6 for name, s in self.seconds().items()}


def wait_quiet(max_busy_percent: float = 25.0, timeout_s: float = 300.0) -> float:
    """Measure the machine's CPU use in half-second windows until it is at most
    `max_busy_percent` (others' benchmarks or tests have finished), or `timeout_s` passed.
    Returns the last window's busy percent, for the record."""
    deadline = time.monotonic() + timeout_s
    while True:
        busy = float(psutil.cpu_percent(interval=0.5))
        if busy <= max_busy_percent or time.monotonic() > deadline:
            return busy


async def quietly(
    meter: CpuMeter,
    make: Callable[[], Awaitable[T]],
    settle: Callable[[], None] = lambda: None,
    say: Callable[[str], None] = lambda msg: None,
) -> tuple[T, dict[str, float]]:
    """Run `make()` metered; run it again (up to MAX_TRIES in all) while other processes took
    more than NOISY of the machine meanwhile, so that a neighbour's test run is no data point.
    Returns the result and the meter's seconds of the run kept."""
    for attempt in range(MAX_TRIES):
        meter.start()
        result = await make()
        seconds = meter.seconds()
        noise = meter.noise(seconds)
        if noise <= NOISY or attempt == MAX_TRIES - 1:
            return result, seconds
        say(f"  others used {noise:.0%} of the machine during that run: once more")
        settle()
    raise AssertionError("unreachable")
