"""Swarm client SDK."""
