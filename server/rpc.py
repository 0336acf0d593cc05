"""Ending calls with a status: one place maps the core's refusals to gRPC codes."""

from __future__ import annotations

from typing import NoReturn

import grpc
from swarm.server.model import Rejected

# Trailing metadata key naming why the orchestrator ended a Session ("taken-over", "shutdown").
END_KEY = "swarm-end"


async def fail(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> NoReturn:
    """End the call with `code`. context.abort raises; this says so to the type checker."""
    await context.abort(code, message)
    raise AssertionError("unreachable: context.abort returned")


async def refuse(context: grpc.aio.ServicerContext, exc: Rejected) -> NoReturn:
    """End the call for a refused request: its code, and the field in the message."""
    await fail(context, status_of(exc), str(exc))


def status_of(exc: Rejected) -> grpc.StatusCode:
    code: grpc.StatusCode = getattr(grpc.StatusCode, exc.code)
    return code
