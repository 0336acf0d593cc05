"""Undecodable input: INVALID_ARGUMENT for the caller, one rate-limited warning for the log.

grpc's generated `add_*_to_server` registers `Message.FromString` as each method's request
deserializer. On bytes that do not decode, that raises inside grpc: a unary call then ends
UNKNOWN ("Unexpected DecodeError") with a traceback logged per request, and a stream read
ends the stream with OK. So the services are registered here instead, from their descriptors,
with a deserializer that never raises: it hands over an `Undecodable` in place of the message.
A unary handler that receives one refuses the call; a stream's context is wrapped so that
`read()` refuses the stream the same way. Every method of every service registered through
`register` is covered, and one rate-limited warning says how many there were.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from google.protobuf import message_factory
from google.protobuf.descriptor import ServiceDescriptor
from swarm.server.rpc import fail

log = logging.getLogger("swarm.server.garbage")

WARN_INTERVAL_S = 60.0


class Undecodable:
    """What the deserializer returns for bytes that are not a valid message of its type."""

    __slots__ = ("size", "type_name")

    def __init__(self, type_name: str, size: int) -> None:
        self.type_name = type_name
        self.size = size


class RateLimitedWarning:
    """Logs the first event at once, then at most one summary per interval."""

    def __init__(self, interval_s: float = WARN_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.count = 0  # since the last warning
        self.total = 0
        self._last: float | None = None

    def note(self, method: str, bad: Undecodable) -> None:
        self.count += 1
        self.total += 1
        now = time.monotonic()
        if self._last is None or now - self._last >= self.interval_s:
            log.warning(
                "undecodable requests: %d since the last report (%d in all); latest on %s, "
                "%d bytes that are no %s",
                self.count,
                self.total,
                method,
                bad.size,
                bad.type_name,
            )
            self.count = 0
            self._last = now


def _decoder(cls: Any) -> Callable[[bytes], object]:
    parse = cls.FromString
    name = cls.DESCRIPTOR.full_name

    def decode(data: bytes) -> object:
        try:
            return parse(data)
        except Exception:  # whatever the parser raises, the bytes are the peer's fault
            return Undecodable(name, len(data))

    return decode


async def _refuse(
    context: grpc.aio.ServicerContext, method: str, bad: Undecodable, warn: RateLimitedWarning
) -> None:
    warn.note(method, bad)
    await fail(
        context,
        grpc.StatusCode.INVALID_ARGUMENT,
        f"could not decode {bad.size} bytes as a {bad.type_name}",
        "request",
    )


class CheckedReads:
    """A stream's context whose `read()` refuses an undecodable message; all else delegates."""

    def __init__(
        self, context: grpc.aio.ServicerContext, method: str, warn: RateLimitedWarning
    ) -> None:
        self._context = context
        self._method = method
        self._warn = warn

    async def read(self) -> object:
        msg = await self._context.read()
        if isinstance(msg, Undecodable):
            await _refuse(self._context, self._method, msg, self._warn)
        return msg

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)


Unary = Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]
Streaming = Callable[[Any, Any], Awaitable[None]]


def _unary(method: str, behavior: Unary, warn: RateLimitedWarning) -> Unary:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        if isinstance(request, Undecodable):
            await _refuse(context, method, request, warn)
        return await behavior(request, context)

    return handle


def _streaming(method: str, behavior: Streaming, warn: RateLimitedWarning) -> Streaming:
    async def handle(request_iterator: Any, context: grpc.aio.ServicerContext) -> None:
        await behavior(request_iterator, CheckedReads(context, method, warn))

    return handle


def register(
    server: grpc.aio.Server,
    servicer: object,
    service: ServiceDescriptor,
    warn: RateLimitedWarning,
) -> None:
    """Register every method of `service` on `servicer` with the checked deserializer.
    Unary-unary and stream-stream are the shapes our protocol has; another is refused here."""
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    for m in service.methods:
        request_cls = message_factory.GetMessageClass(m.input_type)
        response_cls = message_factory.GetMessageClass(m.output_type)
        behavior = getattr(servicer, m.name)
        full = f"/{service.full_name}/{m.name}"
        decode = _decoder(request_cls)
        encode = response_cls.SerializeToString
        if m.client_streaming and m.server_streaming:
            handlers[m.name] = grpc.stream_stream_rpc_method_handler(
                _streaming(full, behavior, warn),
                request_deserializer=decode,
                response_serializer=encode,
            )
        elif not m.client_streaming and not m.server_streaming:
            handlers[m.name] = grpc.unary_unary_rpc_method_handler(
                _unary(full, behavior, warn),
                request_deserializer=decode,
                response_serializer=encode,
            )
        else:
            raise TypeError(f"{full}: only unary and bidirectional methods are supported")
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),)
    )
    server.add_registered_method_handlers(service.full_name, handlers)
