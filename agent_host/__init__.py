"""Swarm agent host: one process running many asyncio agents."""
