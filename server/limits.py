"""Limits on what a request may make the orchestrator keep, checked before anything changes.

* `admit_client`: a Session or Submit under a client_id the orchestrator does not know yet is
  RESOURCE_EXHAUSTED once it holds `max_clients` client entries.
* `submit`: a refused batch leaves no client entry behind. The core creates the entry of a new
  client before it checks the batch's graph; the entry of a client that did not exist before
  the call is dropped again when the core refuses the batch, so a refusal changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

from swarm.server.config import OrchestratorConfig
from swarm.server.core import Core
from swarm.server.core_tasks import SubmitOutcome
from swarm.server.model import Rejected, Task


def admit_client(core: Core, client_id: str, config: OrchestratorConfig) -> None:
    if client_id and client_id not in core.clients and len(core.clients) >= config.max_clients:
        raise Rejected(
            "RESOURCE_EXHAUSTED",
            "client_id",
            f"the orchestrator holds {len(core.clients)} clients, limit {config.max_clients}: "
            "reuse a client_id, or retry once idle clients expired",
        )


def submit(
    core: Core,
    tasks: Sequence[Task],
    deps: Sequence[Sequence[str]] | None,
    client_id: str,
    now: float,
) -> SubmitOutcome:
    new_client = bool(client_id) and client_id not in core.clients
    try:
        return core.submit(tasks, deps, client_id, now)
    except Rejected:
        if new_client:
            core.clients.pop(client_id, None)
        raise
