"""Pieces shared by the orchestrator, hosts and clients."""
