"""Swarm orchestrator: the task table, scheduler core and gRPC services."""
