"""Which of gRPC's I/O stacks Swarm's processes use.

grpcio 1.85 runs its EventEngine client and listener by default; on the loopback workloads of
docs/performance.md its older I/O stack costs about a third less CPU per message (W3 round trip
p50 1,157 -> 798 us, W1 +9 %). gRPC reads the choice once, when `grpc` is first imported, so
each entry point calls `prefer_legacy_io()` before anything imports grpc. A value already in
the environment wins, and a grpcio without the older stack ignores the setting.

Library users (the SDK in your own process) choose for themselves: export
GRPC_EXPERIMENTS=-event_engine_client,-event_engine_listener before starting Python.
"""

from __future__ import annotations

import os

LEGACY_IO = "-event_engine_client,-event_engine_listener"


def prefer_legacy_io() -> None:
    os.environ.setdefault("GRPC_EXPERIMENTS", LEGACY_IO)
