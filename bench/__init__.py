"""The benchmark harness of `swarm bench`: workloads, drivers, the same-run baseline."""
