"""swarm.common.backoff.Backoff, the one backoff (issue 9, defect 9): no processes."""

from __future__ import annotations

import pytest
from swarm.agent_host.host import HostConfig
from swarm.common.backoff import RECONNECT_MAX_ALLOWED_S, Backoff
from swarm.common.grpc_options import CHANNEL_OPTIONS


def test_doubles_to_the_cap_and_resets_after_a_stable_run() -> None:
    b = Backoff(initial_s=0.1, max_s=1.0, stable_s=10.0, jitter=0.0)
    assert [b.next(0.5) for _ in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert b.failures == 6
    assert b.next(10.0) == 0.1  # it ran stable_s: healthy, so quick again
    assert b.next(0.0) == 0.2
    b.reset()
    assert b.next() == 0.1


def test_jitter_spreads_waits_below_the_cap_never_above() -> None:
    lowest = Backoff(initial_s=1.0, max_s=4.0, jitter=0.5, rng=lambda: 0.0)
    highest = Backoff(initial_s=1.0, max_s=4.0, jitter=0.5, rng=lambda: 1.0)
    assert [lowest.next() for _ in range(4)] == [0.5, 1.0, 2.0, 2.0]
    assert [highest.next() for _ in range(4)] == [1.0, 2.0, 4.0, 4.0]
    real = Backoff(initial_s=0.05, max_s=2.0)
    waits = [real.next() for _ in range(200)]
    assert all(0 < w <= 2.0 for w in waits) and len(set(waits[10:])) > 1


def test_never_resets_by_itself_unless_told_how_long_is_stable() -> None:
    b = Backoff(initial_s=1.0, max_s=8.0, jitter=0.0)
    assert [b.next(1e9) for _ in range(3)] == [1.0, 2.0, 4.0]


def test_a_long_run_of_failures_stays_at_the_cap() -> None:
    b = Backoff(initial_s=0.1, max_s=5.0, multiplier=1.6, jitter=0.0)
    assert b.delay_for(10_000) == 5.0 and b.delay_for(0) == 0.1


def test_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        Backoff(initial_s=2.0, max_s=1.0)
    with pytest.raises(ValueError):
        Backoff(initial_s=0.1, max_s=1.0, jitter=2.0)
    with pytest.raises(ValueError):
        Backoff(initial_s=0.1, max_s=1.0, multiplier=0.5)


def test_reconnects_are_capped_and_channels_retry_sooner_than_their_callers() -> None:
    """The rule: reconnect backoff at most 5 s; a channel's own connection backoff (which
    gRPC jitters by up to 20 %) must end before the caller's next retry."""
    assert HostConfig(address="x").reconnect_max_s <= RECONNECT_MAX_ALLOWED_S
    with pytest.raises(ValueError, match="reconnect_max_s"):
        HostConfig(address="x", reconnect_max_s=RECONNECT_MAX_ALLOWED_S + 1)
    options = dict(CHANNEL_OPTIONS)
    cap_ms = HostConfig(address="x").reconnect_max_s * 1000
    assert options["grpc.max_reconnect_backoff_ms"] * 1.2 < cap_ms
    assert options["grpc.initial_reconnect_backoff_ms"] <= options["grpc.max_reconnect_backoff_ms"]
