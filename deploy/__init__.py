"""Running a swarm on this machine: the supervisor, its child processes, `LocalSwarm`."""
