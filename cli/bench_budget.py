"""Where the CPU goes: per-process CPU time per task, and how busy the machine is otherwise.

    meter = CpuMeter({"client": os.getpid(), "orchestrator": pid, "host0": pid0})
    meter.start()
    ...                                    # run a workload of n tasks
    meter.per_task(n)     # µs per task: {"client": 4.1, "orchestrator": 8.3, ..., "wall": 9.5}

"other" is what the rest of the machine used meanwhile (other processes, the kernel's share not
charged to ours), in the same unit: on a shared machine it says how far a figure can be trusted.
Process CPU times tick in 10 ms steps, so a run should take a few hundred milliseconds at least.
"""

from __future__ import annotations

import time

import psutil


def _busy_s() -> float:
    """Seconds the machine's CPUs have been busy since boot (all CPUs together)."""
    times = psutil.cpu_times()
    idle = float(times.idle) + float(getattr(times, "iowait", 0.0))
    return float(sum(times)) - idle


class CpuMeter:
    def __init__(self, pids: dict[str, int]) -> None:
        self.procs = {name: psutil.Process(pid) for name, pid in pids.items()}
        self._start: dict[str, float] = {}
        self._machine = 0.0
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
        self._machine = _busy_s()
        self._wall = time.perf_counter()

    def seconds(self) -> dict[str, float]:
        """CPU seconds per process since start(), plus "other" and "wall"."""
        now = self._now()
        out = {name: now[name] - self._start[name] for name in now}
        machine = _busy_s() - self._machine
        out["other"] = max(0.0, machine - sum(out.values()))
        out["wall"] = time.perf_counter() - self._wall
        return out

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
