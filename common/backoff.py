"""The one backoff of Swarm: how long to wait before trying again (a reconnect, a restart).

    backoff = Backoff(initial_s=0.05, max_s=2.0, stable_s=5.0)
    delay = backoff.next(up_s)    # up_s: how long what just failed had been up (0: never up)

Exponential (x `multiplier` per failure from `initial_s`), capped at `max_s`, jittered and
reset after a stable run: an attempt that stayed up `stable_s` or longer before it failed counts
as healthy, so the next wait is short again, while one that keeps failing at once (a flapping
stream, a crash loop) waits longer each time. Jitter scales each wait down by up to `jitter`
(0.5: a wait lies in [d/2, d]) so that many peers that failed together (every host of an
orchestrator that died) do not retry in step, and no wait ever exceeds the cap.

`delay_for(n)` is the same curve without state, for callers that keep the count themselves:
the orchestrator's retry backoff of a failing task (server/core_tasks.py) is
`delay_for(task.retries - 1)`.

A reconnect also needs a channel that tries again as often: gRPC channels have a connection
backoff of their own (common/grpc_options.py sets it below ours).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

# Reconnects of hosts and clients to the orchestrator: first retry within 50 ms, never more than
# 2 s apart (the rule is at most 5 s), and a stream that stayed up 5 s was healthy.
RECONNECT_INITIAL_S = 0.05
RECONNECT_MAX_S = 2.0
RECONNECT_MAX_ALLOWED_S = 5.0
RECONNECT_STABLE_S = 5.0


@dataclass(slots=True)
class Backoff:
    initial_s: float
    max_s: float
    multiplier: float = 2.0
    jitter: float = 0.5
    stable_s: float = float("inf")  # default: only reset() starts over
    rng: Callable[[], float] = field(default=random.random, repr=False)
    _failures: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.max_s:
            raise ValueError("backoff needs 0 < initial_s <= max_s")
        if self.multiplier < 1 or not 0 <= self.jitter <= 1 or self.stable_s < 0:
            raise ValueError("backoff needs multiplier >= 1, 0 <= jitter <= 1, stable_s >= 0")

    @property
    def failures(self) -> int:
        """Failures in a row since the last reset (or stable run)."""
        return self._failures

    def next(self, up_s: float = 0.0) -> float:
        """The wait before the next try, after a failure of an attempt that was up `up_s`."""
        if up_s >= self.stable_s:
            self._failures = 0
        delay = self.delay_for(self._failures)
        self._failures += 1
        return delay

    def reset(self) -> None:
        self._failures = 0

    def delay_for(self, n: int) -> float:
        """The wait after the (n+1)-th failure in a row: initial_s * multiplier**n, capped,
        jittered."""
        try:
            capped = min(self.max_s, self.initial_s * self.multiplier**n)
        except OverflowError:  # a long run of failures: far past the cap
            capped = self.max_s
        return capped * (1.0 - self.jitter + self.jitter * self.rng())
