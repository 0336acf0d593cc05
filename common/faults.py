"""Fault seams: drop, delay or break gRPC messages on purpose, for tests and benchmarks.

Off unless configured. A plan is a list of rules, given as JSON (`--faults` or $SWARM_FAULTS):

    [{"method": "Connect", "direction": "in", "message": "results", "action": "drop", "after": 2}]

drops the third `results` message the orchestrator receives on any HostService.Connect stream.

* method: the RPC's name ("Connect", "Session", "Submit", "Wait", ...).
* direction: "in" (what the server receives) or "out" (what it sends).
* message: for streams, the envelope's oneof name ("results", "heartbeat", "assign", ...);
  empty matches any message.
* action: "drop" (the message vanishes; a dropped unary request or reply leaves the caller
  waiting until its deadline), "delay" (by delay_s), or "break" (the stream or call fails with
  UNAVAILABLE, as when a connection is cut).
* after: let this many matching messages through first; times: fire this often (0: always).

The server interceptor applies the plan to unary calls and, through a wrapped servicer context,
to every message of a stream.

One rule kind is no message: {"method": "timers", "action": "raise", "after": 5} makes the
orchestrator's timer loop raise InjectedFault on its sixth tick (`FaultPlan.on_tick`), as a bug
in the core's tick would; the process must then exit non-zero, not run on without timers.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

ACTIONS = ("drop", "delay", "break", "raise")
TIMERS = "timers"  # the pseudo-method of the orchestrator's timer loop; its only action: raise
DIRECTIONS = ("in", "out")
_DROP_WAIT_S = 60.0  # a dropped unary call hangs at most this long (or until its deadline)


@dataclass(slots=True)
class FaultRule:
    method: str
    action: str
    direction: str = "in"
    message: str = ""
    after: int = 0
    times: int = 1
    delay_s: float = 0.0
    seen: int = field(default=0, compare=False)
    fired: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"fault action must be one of {ACTIONS}, got {self.action!r}")
        if self.direction not in DIRECTIONS:
            raise ValueError(f"fault direction must be one of {DIRECTIONS}, got {self.direction!r}")
        if (self.method == TIMERS) != (self.action == "raise"):
            raise ValueError(f'the action "raise" is for the method {TIMERS!r}, and only it')
        if self.after < 0 or self.times < 0 or self.delay_s < 0:
            raise ValueError("fault after, times and delay_s must be >= 0")


class InjectedFault(RuntimeError):
    """Raised by a fault seam on purpose (a "raise" rule)."""


class FaultPlan:
    def __init__(self, rules: list[FaultRule]) -> None:
        self.rules = rules
        self.methods = frozenset(r.method for r in rules)
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str) -> FaultPlan:
        data = json.loads(text)
        if isinstance(data, dict):
            data = [data]
        return cls([FaultRule(**item) for item in data])

    @classmethod
    def from_env(cls, text: str | None = None) -> FaultPlan | None:
        text = text if text is not None else os.environ.get("SWARM_FAULTS", "")
        if not text:
            return None
        if not text.lstrip().startswith(("[", "{")):
            with open(text) as f:
                text = f.read()
        return cls.parse(text)

    def match(self, method: str, direction: str, message: str = "") -> FaultRule | None:
        """The rule that fires for this message now, if any (counts it as seen)."""
        if method not in self.methods:
            return None
        with self._lock:
            for rule in self.rules:
                if rule.method != method or rule.direction != direction:
                    continue
                if rule.message and rule.message != message:
                    continue
                rule.seen += 1
                if rule.seen <= rule.after or (rule.times and rule.fired >= rule.times):
                    continue
                rule.fired += 1
                return rule
        return None

    def on_tick(self) -> None:
        """The timer loop's seam: raise InjectedFault when a "timers" rule fires for this tick."""
        if TIMERS in self.methods and self.match(TIMERS, "in") is not None:
            raise InjectedFault("the timer loop was broken by a fault seam")

    @property
    def fired(self) -> int:
        return sum(r.fired for r in self.rules)


def _name(msg: Any) -> str:
    """The envelope's oneof name, for stream messages; "" for other messages."""
    descriptor = getattr(msg, "DESCRIPTOR", None)
    if descriptor is None or "msg" not in descriptor.oneofs_by_name:
        return ""
    return msg.WhichOneof("msg") or ""


async def _break(context: grpc.aio.ServicerContext, what: str) -> None:
    await context.abort(grpc.StatusCode.UNAVAILABLE, f"{what} broken by a fault seam")


async def _hang(context: grpc.aio.ServicerContext) -> None:
    remaining = context.time_remaining()
    await asyncio.sleep(min(_DROP_WAIT_S, remaining if remaining is not None else _DROP_WAIT_S))
    await context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "dropped by a fault seam")


class FaultyContext:
    """A servicer context whose read() and write() pass through the plan."""

    def __init__(self, context: grpc.aio.ServicerContext, plan: FaultPlan, method: str) -> None:
        self._context = context
        self._plan = plan
        self._method = method

    def __getattr__(self, name: str) -> Any:
        return getattr(self._context, name)

    async def read(self) -> Any:
        while True:
            msg = await self._context.read()
            if msg is grpc.aio.EOF:
                return msg
            rule = self._plan.match(self._method, "in", _name(msg))
            if rule is None:
                return msg
            if rule.action == "drop":
                continue
            if rule.action == "delay":
                await asyncio.sleep(rule.delay_s)
                return msg
            await _break(self._context, "stream")

    async def write(self, msg: Any) -> None:
        rule = self._plan.match(self._method, "out", _name(msg))
        if rule is not None:
            if rule.action == "drop":
                return
            if rule.action == "delay":
                await asyncio.sleep(rule.delay_s)
            else:
                await _break(self._context, "stream")
        await self._context.write(msg)


class FaultInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, plan: FaultPlan) -> None:
        self.plan = plan

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        method = details.method.rsplit("/", 1)[-1]
        if handler is None or method not in self.plan.methods:
            return handler
        plan = self.plan
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: grpc.aio.ServicerContext) -> Any:
                rule = plan.match(method, "in", _name(request))
                if rule is not None:
                    if rule.action == "drop":
                        await _hang(context)
                    elif rule.action == "delay":
                        await asyncio.sleep(rule.delay_s)
                    else:
                        await _break(context, "call")
                reply = await inner(request, context)
                rule = plan.match(method, "out", _name(reply))
                if rule is not None:
                    if rule.action == "drop":
                        await _hang(context)  # the work is done; only the reply is lost
                    elif rule.action == "delay":
                        await asyncio.sleep(rule.delay_s)
                    else:
                        await _break(context, "call")
                return reply

            return grpc.unary_unary_rpc_method_handler(
                unary, handler.request_deserializer, handler.response_serializer
            )
        if handler.stream_stream is not None:
            inner_stream = handler.stream_stream

            async def stream(request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
                return await inner_stream(request_iterator, FaultyContext(context, plan, method))

            return grpc.stream_stream_rpc_method_handler(
                stream, handler.request_deserializer, handler.response_serializer
            )
        return handler
