"""Limits on what a request may make the orchestrator keep, checked before anything changes.

* `admit_client`: a Session or Submit under a client_id the orchestrator does not know yet is
  RESOURCE_EXHAUSTED once it holds `max_clients` client entries.
"""

from __future__ import annotations

from swarm.server.config import OrchestratorConfig
from swarm.server.core import Core
from swarm.server.model import Rejected


def admit_client(core: Core, client_id: str, config: OrchestratorConfig) -> None:
    if client_id and client_id not in core.clients and len(core.clients) >= config.max_clients:
        raise Rejected(
            "RESOURCE_EXHAUSTED",
            "client_id",
            f"the orchestrator holds {len(core.clients)} clients, limit {config.max_clients}: "
            "reuse a client_id, or retry once idle clients expired",
        )
