"""Channel and server options shared by every Swarm endpoint.

Keepalive: both sides ping every 10 s so a dead peer behind a silent network is noticed even
when no application message flows; the orchestrator's own host lease (a few heartbeat
intervals) is what detects a hung host quickly, keepalive only cleans up dead connections.
Message size: batches of thousands of tasks with payloads can pass the 4 MiB default, so
messages may be up to MAX_MESSAGE_BYTES. Every batch Swarm sends (assignments, results to
clients and from hosts, SDK submissions) is cut by bytes as well as by count: it takes items
while they stay within BATCH_BYTES, and at least one; one item (an assignment with its
dependencies' outputs, a result) is at most MAX_ITEM_BYTES, which leaves headroom below the
limit for the batch's own framing. See swarm.server.budgets for how sizes are counted.

Reconnect backoff: a channel whose connection failed stays in TRANSIENT_FAILURE until its own
next connection attempt, failing every call at once meanwhile, and by default that attempt backs
off from 1 s by 1.6x up to 120 s (gRPC's connection-backoff.md). So after an orchestrator was
down for a while, a host retrying every 2 s kept failing for tens of seconds against a listening
orchestrator. The channel's backoff is capped here at half the callers' reconnect cap
(swarm.common.backoff; gRPC adds up to 20 % jitter): the channel is connected again before the
next retry of a host or client, which then rejoins within its own cap, twice it at worst.
"""

from __future__ import annotations

from swarm.common.backoff import RECONNECT_MAX_S

MAX_MESSAGE_BYTES = 64 * 1024 * 1024
MAX_ITEM_BYTES = MAX_MESSAGE_BYTES - 1024 * 1024
BATCH_BYTES = 8 * 1024 * 1024
# A task's output at most: agent hosts report a larger one as a handler error (OutputTooLarge)
# and the orchestrator fails one as TOO_LARGE (OrchestratorConfig.max_output_bytes).
MAX_OUTPUT_BYTES = 16 * 1024 * 1024
CHANNEL_RECONNECT_INITIAL_MS = 100
CHANNEL_RECONNECT_MAX_MS = int(RECONNECT_MAX_S * 1000 / 2)

CHANNEL_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.max_pings_without_data", 0),
    ("grpc.initial_reconnect_backoff_ms", CHANNEL_RECONNECT_INITIAL_MS),
    ("grpc.max_reconnect_backoff_ms", CHANNEL_RECONNECT_MAX_MS),
]

SERVER_OPTIONS: list[tuple[str, int]] = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 5_000),
    ("grpc.http2.max_ping_strikes", 0),
    ("grpc.so_reuseport", 0),
]
