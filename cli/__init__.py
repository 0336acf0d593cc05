"""Swarm command line: swarm up, host, demo, submit, status, bench."""
