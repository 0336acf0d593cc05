"""What the orchestrator's log says about hosts leaving: read by failover tests and benchmarks.

The orchestrator has no API that reports *when* it declared a host lost, and the time is what a
failover measurement is about, so both read its log lines (`LocalSwarm.lost_events()`).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

# The orchestrator's lines when it stops counting a host: lost (server/core.py, `host_lost`), or
# left, which is meant for a clean goodbye (server/host_service.py). "left" is logged at INFO:
# an orchestrator at WARNING shows only the lost lines.
_GONE = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),(\d{3}) \S+ (?:WARNING|INFO) host (\S+) "
    r"(?:\(pid (\d+)\) lost: (.*); (\d+) tasks requeued(?:, (\d+) quarantined)?|(left))"
)


@dataclass(frozen=True, slots=True)
class LostEvent:
    """One "host ... lost" (or "host ... left") line of the orchestrator's log."""

    at: float  # wall-clock seconds (the log's millisecond resolution)
    host_id: str
    why: str  # "left" for the clean-goodbye path
    requeued: int | None  # None on the "left" path, which does not say
    pid: int | None = None  # None on the "left" path
    quarantined: int | None = None

    @property
    def lost(self) -> bool:
        """Declared lost (a broken stream, an expired lease), not a clean goodbye."""
        return self.pid is not None


def parse_lost(log_text: str) -> list[LostEvent]:
    events = []
    for line in log_text.splitlines():
        m = _GONE.match(line)
        if m is not None:
            stamp = dt.datetime.strptime(m.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
            at = stamp + int(m.group(2)) / 1000
            pid, why, requeued, quarantined, left = m.group(4, 5, 6, 7, 8)
            events.append(
                LostEvent(
                    at,
                    m.group(3),
                    why or left,
                    None if requeued is None else int(requeued),
                    None if pid is None else int(pid),
                    None if quarantined is None else int(quarantined),
                )
            )
    return events
