"""Ending calls with a status: one place maps the core's refusals to gRPC codes.

Every refusal's text is `field: message`, e.g. `tasks[0].kind: must not be empty`, so a person
reading a log sees the field. INVALID_ARGUMENT carries the same as structured details too: a
`google.rpc.Status` with one `google.rpc.BadRequest` field violation, in the
`grpc-status-details-bin` trailer (what grpcio-status, and every language's status library,
reads), so a program need not parse the text.
"""

from __future__ import annotations

from typing import NoReturn

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from swarm.server.model import Rejected

# Trailing metadata key naming why the orchestrator ended a Session ("taken-over", "shutdown").
END_KEY = "swarm-end"


async def fail(
    context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str, field: str = ""
) -> NoReturn:
    """End the call with `code` and `field: message`. context.abort raises; this says so to the
    type checker."""
    text = f"{field}: {message}" if field else message
    if code is grpc.StatusCode.INVALID_ARGUMENT:
        violation = error_details_pb2.BadRequest.FieldViolation(
            field=field or "request", description=message
        )
        detail = any_pb2.Any()
        detail.Pack(error_details_pb2.BadRequest(field_violations=[violation]))
        status = status_pb2.Status(code=code.value[0], message=text, details=[detail])
        await context.abort_with_status(rpc_status.to_status(status))
    else:
        await context.abort(code, text)
    raise AssertionError("unreachable: context.abort returned")


async def refuse(context: grpc.aio.ServicerContext, exc: Rejected) -> NoReturn:
    """End the call for a refused request: its code, and the field in the message."""
    await fail(context, status_of(exc), exc.message, exc.field)


def status_of(exc: Rejected) -> grpc.StatusCode:
    code: grpc.StatusCode = getattr(grpc.StatusCode, exc.code)
    return code
