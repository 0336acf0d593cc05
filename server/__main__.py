from swarm.common.io_stack import prefer_legacy_io

prefer_legacy_io()  # before anything imports grpc

from swarm.server.app import main  # noqa: E402

main()
