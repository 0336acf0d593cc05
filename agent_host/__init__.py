"""Swarm agent host: one process running many asyncio agents.

User modules register handlers with `handler`, host-wide resources with `on_startup` and
their clean-up with `on_shutdown`; `swarm host --module my.handlers` loads them.
"""

from swarm.agent_host.context import Agent, TaskContext
from swarm.agent_host.handlers import handler, on_shutdown, on_startup
from swarm.agent_host.host import AgentHost, HostConfig

__all__ = [
    "Agent",
    "AgentHost",
    "HostConfig",
    "TaskContext",
    "handler",
    "on_shutdown",
    "on_startup",
]
