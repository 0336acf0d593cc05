"""Orchestrator settings: one frozen dataclass that refuses inconsistent timings up front."""

from __future__ import annotations

from dataclasses import dataclass

from swarm.common.grpc_options import MAX_ITEM_BYTES, MAX_OUTPUT_BYTES

MIB = 1024 * 1024


class ConfigError(ValueError):
    """Settings that cannot work together; the message says which and why."""


@dataclass(frozen=True, slots=True)
class OrchestratorConfig:
    # Hosts heartbeat this often; everything about failure detection is counted in intervals.
    heartbeat_interval_s: float = 0.5
    # A host that sends nothing for this long is lost (hung, frozen or cut off).
    lease_s: float = 1.5
    # Tasks a host may hold beyond its free agents, so that it never idles waiting for a round
    # trip: what it finishes in prefetch_s at its recent pace (hosts.py, HostView.earn), at
    # most `prefetch`.
    prefetch: int = 256
    prefetch_s: float = 0.01
    # A task on this many lost hosts fails with HOST_LOST (a poison task).
    max_host_losses: int = 3
    # Retries after a handler error when the task does not say.
    default_max_retries: int = 0
    retry_backoff_s: float = 0.1
    retry_backoff_max_s: float = 10.0
    # Finished tasks (for idempotent resubmission, Wait and GetTasks) are forgotten after this.
    result_ttl_s: float = 300.0
    # ... and at most this many of them, and this many bytes of their payloads and outputs
    # (budgets.held_bytes), oldest first out: memory stays flat under endless load.
    max_retained: int = 100_000
    max_retained_bytes: int = 256 * MIB
    # A disconnected client's undelivered results are dropped this long after its last session
    # ended (or, for a client_id that only ever used unary Submit, after its last submission),
    # checked every tick.
    client_ttl_s: float = 600.0
    # Unfinished tasks the orchestrator holds at most, and the bytes of their payloads; beyond
    # either Submit is RESOURCE_EXHAUSTED. Sized for a laptop: a queued task costs about 0.5 KB
    # besides its payload, so the defaults hold at most about 100 MB + 256 MiB.
    max_tasks: int = 200_000
    max_task_bytes: int = 256 * MIB
    # Results one client may leave unacknowledged, by count and by bytes held
    # (budgets.held_bytes: payload, output and about 1 KB for the task), and the bytes of all
    # clients' unacknowledged results together; past any, that client's submissions are
    # RESOURCE_EXHAUSTED until it acknowledges (or, disconnected, its results expire).
    max_unacked_results: int = 100_000
    max_unacked_result_bytes: int = 128 * MIB
    max_unacked_bytes_total: int = 512 * MIB
    # Clients other than the first that may submit one task's id and be sent its result; past
    # it a submission naming the task is RESOURCE_EXHAUSTED.
    max_watchers: int = 64
    # Per-request limits (RESOURCE_EXHAUSTED past them).
    max_batch: int = 10_000
    max_payload_bytes: int = 16 * MIB
    # A task's output at most: a larger one fails the task with TOO_LARGE (agent hosts check
    # it themselves and report a handler error). Payload and output each fit one message;
    # a dependent's payload plus its dependencies' outputs must fit one too (budgets.py).
    max_output_bytes: int = MAX_OUTPUT_BYTES
    max_depends_on: int = 10_000
    # The orchestrator times out an attempt itself when no result came this long after its
    # timeout_s ran out (counted from its started notice, or from sending it when none came):
    # a host that accepts work and never answers cannot hold it forever. The grace leaves the
    # host's own timeout, which reports what the handler was doing, time to arrive first.
    timeout_grace_s: float = 2.0
    # Ids in one GetTasks, Wait, Cancel or ack (each at most 256 characters, so at most 10,000 x
    # 1 KiB of UTF-8); RESOURCE_EXHAUSTED past it.
    max_ids: int = 10_000
    # Agents one host may report (hello.capacity, hello.max_capacity, heartbeat.capacity).
    max_host_capacity: int = 1_000_000
    # Every stream (Session, Connect) must send its first message (open, hello) within this, or
    # it ends with DEADLINE_EXCEEDED: a stream that never starts holds nothing for long.
    first_message_timeout_s: float = 10.0
    # Concurrent streams per kind; one more ends at once with RESOURCE_EXHAUSTED. An idle stream
    # costs the orchestrator a few KiB (see the README), so these bound that memory too.
    max_session_streams: int = 1_000
    max_host_streams: int = 1_000
    # Client entries (result outboxes) at most; a Session or Submit under a new client_id beyond
    # it is RESOURCE_EXHAUSTED. A session that closes owning no task leaves no entry; the others
    # stay until client_ttl_s after their client was last seen.
    max_clients: int = 100_000
    # Extra time a draining host gets past its own grace period before it counts as lost.
    drain_margin_s: float = 2.0
    # How often the timer work (leases, retries, timeouts, expiry) runs.
    tick_s: float = 0.05

    def __post_init__(self) -> None:
        if self.heartbeat_interval_s <= 0:
            raise ConfigError("heartbeat_interval_s must be > 0")
        if self.lease_s < 2 * self.heartbeat_interval_s:
            raise ConfigError(
                f"lease_s ({self.lease_s}) must be at least two heartbeat intervals "
                f"({2 * self.heartbeat_interval_s}): one late heartbeat must not lose a host"
            )
        if self.tick_s <= 0 or self.tick_s > self.heartbeat_interval_s:
            raise ConfigError("tick_s must be > 0 and at most heartbeat_interval_s")
        if self.prefetch < 0:
            raise ConfigError("prefetch must be >= 0")
        if not 0 <= self.prefetch_s <= self.heartbeat_interval_s:
            raise ConfigError("prefetch_s must be within 0..heartbeat_interval_s")
        if self.max_host_losses < 1:
            raise ConfigError("max_host_losses must be >= 1")
        if self.timeout_grace_s < 0:
            raise ConfigError("timeout_grace_s must be >= 0")
        if self.default_max_retries < 0:
            raise ConfigError("default_max_retries must be >= 0")
        if not 0 < self.retry_backoff_s <= self.retry_backoff_max_s:
            raise ConfigError("need 0 < retry_backoff_s <= retry_backoff_max_s")
        if self.result_ttl_s <= 0 or self.client_ttl_s <= 0:
            raise ConfigError("result_ttl_s and client_ttl_s must be > 0")
        if self.max_watchers < 0:
            raise ConfigError("max_watchers must be >= 0")
        if self.max_tasks < 1 or self.max_batch < 1:
            raise ConfigError("max_tasks and max_batch must be >= 1")
        if self.first_message_timeout_s <= 0:
            raise ConfigError("first_message_timeout_s must be > 0")
        limits = ("max_ids", "max_host_capacity", "max_session_streams", "max_host_streams")
        for name in (*limits, "max_clients"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        # Less than the message limit's headroom: one payload or output fits one message.
        for name in ("max_payload_bytes", "max_output_bytes"):
            if not 0 < getattr(self, name) <= MAX_ITEM_BYTES - 64 * 1024:
                raise ConfigError(f"{name} must be within 1..{MAX_ITEM_BYTES - 64 * 1024}")
        for name in (
            "max_task_bytes",
            "max_retained_bytes",
            "max_unacked_result_bytes",
            "max_unacked_bytes_total",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
