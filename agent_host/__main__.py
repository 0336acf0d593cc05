from swarm.agent_host.main import main

raise SystemExit(main())
