from swarm.server.app import main

main()
