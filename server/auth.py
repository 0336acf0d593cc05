"""Who is calling: bearer tokens from a reloadable file, checked once per call by an interceptor.

Token file (owner-only; `swarm certs init` writes one), one grant a line:

    # token                         role    scope
    swarm_3k...                     admin   default      <- namespace
    swarm_9f...                     client  tenant-a     <- namespace
    swarm_x1...                     host    *            <- any host id, bound on first claim
    swarm_q7...                     host    gpu-box-1    <- this host id only

Roles: `client` submits, reads and cancels in its namespace; `admin` does that too and also
drains hosts and sees every client in GetStatus; `host` may only join as an agent host.

Cost per call: the interceptor reads one metadata entry and does one dict lookup. The file is
re-read when its mtime, size or inode changes (checked at most once a second, on the call path),
so a revoked token stops working without a restart; a file that does not parse leaves the
previous grants in force and logs why (an editing slip must neither lock everyone out nor let
everyone in).
"""

from __future__ import annotations

import enum
import logging
import os
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from swarm.server.keys import key_safe

log = logging.getLogger("swarm.server.auth")

RELOAD_CHECK_S = 1.0
MIN_TOKEN_CHARS = 16
HEALTH_PREFIX = "/grpc.health.v1.Health/"
HOST_PREFIX = "/swarm.v1.HostService/"
TASK_PREFIX = "/swarm.v1.TaskService/"
ADMIN_METHODS = frozenset({"/swarm.v1.TaskService/DrainHost"})


class Role(enum.Enum):
    CLIENT = "client"
    ADMIN = "admin"
    HOST = "host"


@dataclass(frozen=True, slots=True)
class Grant:
    """What one credential may do. `scope`: the namespace (client, admin), or the host id a
    host credential may claim ("*": any). `principal` names the credential in host bindings
    and logs, never the secret itself."""

    role: Role
    scope: str
    principal: str

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


# Authentication off (loopback, zero configuration): every caller may do everything, and a
# request's own namespace field decides where it acts, as before tokens existed.
OPEN = Grant(Role.ADMIN, "*", "anonymous")


class TokenFileError(ValueError):
    pass


def parse_tokens(text: str, source: str = "tokens") -> dict[str, Grant]:
    grants: dict[str, Grant] = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 3:
            raise TokenFileError(f"{source}:{n}: want `token role scope`, got {len(parts)} fields")
        token, role_name, scope = parts
        try:
            role = Role(role_name)
        except ValueError:
            raise TokenFileError(
                f"{source}:{n}: role {role_name!r} is not one of client, admin, host"
            ) from None
        if len(token) < MIN_TOKEN_CHARS:
            raise TokenFileError(f"{source}:{n}: a token needs {MIN_TOKEN_CHARS}+ characters")
        if not key_safe(scope) or (scope == "*" and role is not Role.HOST):
            raise TokenFileError(f"{source}:{n}: bad scope {scope!r} for role {role_name}")
        if token in grants:
            raise TokenFileError(f"{source}:{n}: the same token twice")
        # The principal is a short, stable, non-secret name: line order can change, the
        # token's tail is what an operator can grep for.
        grants[token] = Grant(role, scope, f"{role_name}-token…{token[-6:]}")
    return grants


class TokenStore:
    """The grants of a token file; `lookup` is the per-call path."""

    def __init__(self, path: str | os.PathLike[str], clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self._clock = clock
        self._grants: dict[str, Grant] = {}
        self._principals: frozenset[str] = frozenset()
        self._stamp: tuple[int, int, int] | None = None
        self._checked = 0.0
        self.reload(strict=True)

    def __len__(self) -> int:
        return len(self._grants)

    def has_principal(self, principal: str) -> bool:
        """Whether a grant in force is named `principal` (host bindings lapse with their token)."""
        return principal in self._principals

    def lookup(self, token: str) -> Grant | None:
        now = self._clock()
        if now - self._checked >= RELOAD_CHECK_S:
            self._checked = now
            self.reload()
        return self._grants.get(token)

    def reload(self, *, strict: bool = False) -> bool:
        """Re-read the file if it changed; True when new grants are in force. `strict` (the
        first load): an unreadable or malformed file raises instead of being logged."""
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp == self._stamp:
                return False
            grants = parse_tokens(self.path.read_text(), str(self.path))
        except (OSError, TokenFileError, UnicodeDecodeError) as exc:
            if strict:
                raise TokenFileError(
                    f"token file {self.path}: {exc}; pass another with --tokens FILE "
                    "(or SWARM_TOKENS)"
                ) from None
            log.error("token file %s not reloaded, the previous grants stay: %s", self.path, exc)
            return False
        if st.st_mode & 0o077:
            log.warning("token file %s is readable by others: chmod 600 it", self.path)
        self._grants, self._stamp = grants, stamp
        self._principals = frozenset(g.principal for g in grants.values())
        log.info("token file %s: %d grants in force", self.path, len(grants))
        return True


def bearer(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an `authorization: Bearer <token>` entry, if any."""
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str) and value.startswith("Bearer "):
            return value[7:]
    return None


def allowed(role: Role, method: str) -> bool:
    """Whether `role` may call `method` at all (namespaces are checked by the services)."""
    if method.startswith(HOST_PREFIX):
        return role is Role.HOST
    if role is Role.HOST:
        return False  # a host credential reads no one's tasks, nor reflection
    return method not in ADMIN_METHODS or role is Role.ADMIN


def _refusal(handler: Any, code: grpc.StatusCode, message: str) -> Any:
    """A handler of the same shape as `handler` that ends the call with `code`."""

    async def refuse(_request: object, context: grpc.aio.ServicerContext) -> None:
        await context.abort(code, message)

    streaming_in = bool(getattr(handler, "request_streaming", False))
    streaming_out = bool(getattr(handler, "response_streaming", False))
    if streaming_in and streaming_out:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if streaming_in:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if streaming_out:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Every call but health needs a known token, and a role that may call the method.
    mTLS hosts (`cert_hosts`) may call HostService without a token: the service then takes
    the verified certificate as the credential."""

    def __init__(self, tokens: TokenStore, *, cert_hosts: bool = False) -> None:
        self.tokens = tokens
        self.cert_hosts = cert_hosts

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        details: grpc.HandlerCallDetails,
    ) -> Any:
        method: str = details.method
        if method.startswith(HEALTH_PREFIX):
            return await continuation(details)
        token = bearer(details.invocation_metadata)
        if token is None:
            if self.cert_hosts and method.startswith(HOST_PREFIX):
                return await continuation(details)
            return _refusal(
                await continuation(details),
                grpc.StatusCode.UNAUTHENTICATED,
                "this swarm requires a credential: pass a token "
                "(metadata `authorization: Bearer <token>`, SWARM_TOKEN or --token-file)",
            )
        grant = self.tokens.lookup(token)
        if grant is None:
            return _refusal(
                await continuation(details),
                grpc.StatusCode.UNAUTHENTICATED,
                "unknown or revoked token",
            )
        if not allowed(grant.role, method):
            return _refusal(
                await continuation(details),
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method}: a {grant.role.value} token may not call this",
            )
        return await continuation(details)
