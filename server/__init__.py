"""Swarm orchestrator: the task table, scheduler core and gRPC services."""


def compiled() -> bool:
    """Whether the core runs as C extensions built by mypyc (setup.py) or as pure Python."""
    from swarm.server import core

    return not (core.__file__ or "").endswith(".py")
