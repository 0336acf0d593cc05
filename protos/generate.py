"""Regenerate the checked-in protobuf and gRPC modules from protos/swarm/v1/*.proto.

    python protos/generate.py            # write next to the .proto files
    python protos/generate.py --out DIR  # write elsewhere (the staleness test compares)

The .proto paths mirror the import path (swarm/v1/x.proto -> swarm.v1.x_pb2), so the generated
imports need no rewriting. Stubs: protoc's own --pyi_out for messages, mypy-protobuf for services.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

PROTO_ROOT = Path(__file__).resolve().parent


def proto_files() -> list[Path]:
    return sorted((PROTO_ROOT / "swarm" / "v1").glob("*.proto"))


def generate(out: Path) -> None:
    from grpc_tools import protoc

    plugin = shutil.which("protoc-gen-mypy_grpc")
    if plugin is None:
        sys.exit("protoc-gen-mypy_grpc not found: pip install mypy-protobuf (in the test extra)")
    args = [
        "protoc",
        f"-I{PROTO_ROOT}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        f"--plugin=protoc-gen-mypy_grpc={plugin}",
        f"--mypy_grpc_out={out}",
        *(str(p.relative_to(PROTO_ROOT)) for p in proto_files()),
    ]
    if protoc.main(args) != 0:
        sys.exit("protoc failed")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=PROTO_ROOT)
    generate(parser.parse_args().out)


if __name__ == "__main__":
    main()
