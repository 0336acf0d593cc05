"""Swarm agent host: one process running many asyncio agents.

User modules register handlers with `handler` and host-wide resources with `on_startup`;
`swarm host --module my.handlers` loads them.
"""

from swarm.agent_host.context import Agent, TaskContext
from swarm.agent_host.handlers import handler, on_startup
from swarm.agent_host.host import AgentHost, HostConfig

__all__ = ["Agent", "AgentHost", "HostConfig", "TaskContext", "handler", "on_startup"]
