"""What a client or a host presents to the orchestrator, and the channel that presents it.

    creds = Credentials.resolve()                 # flags > SWARM_* variables > $SWARM_HOME
    channel = creds.aio_channel(address, CHANNEL_OPTIONS)
    stub = creds.bind(task_pb2_grpc.TaskServiceStub(channel))

Environment (each overrides what $SWARM_HOME holds):
    SWARM_HOME              a state directory made by `swarm certs init`
    SWARM_CA                CA bundle (PEM) the server's certificate must chain to
    SWARM_TOKEN             bearer token; SWARM_TOKEN_FILE: a file holding it
    SWARM_CERT, SWARM_KEY   a client certificate and key (hosts, when the server wants mTLS)
    SWARM_TLS_SERVER_NAME   the name to check the server's certificate for, when the address
                            used is not one of its names (an IP the certificate does not list)

The token travels as call metadata (`authorization: Bearer ...`) bound to each stub method
once, so a call costs nothing extra: no interceptor on the stream, no metadata plugin thread.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import grpc
from swarm.common import pki

S = TypeVar("S")
Role = Literal["client", "host"]


class CredentialsError(ValueError):
    """Credentials named but unusable (a missing file, an empty token); the message says which."""


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise CredentialsError(f"{what}: cannot read {path}: {exc.strerror}") from None


def read_token(path: str | os.PathLike[str]) -> str:
    token = _read(path, "token file").decode().strip()
    if not token:
        raise CredentialsError(f"token file {path} is empty")
    return token


def state_dir(explicit: str | os.PathLike[str] | None = None) -> Path | None:
    """The state directory in use: the one passed, else $SWARM_HOME, else none."""
    value = explicit or os.environ.get("SWARM_HOME")
    return Path(value).expanduser() if value else None


@dataclass(frozen=True, slots=True)
class Credentials:
    """TLS trust (`ca`), an optional client certificate, and an optional bearer token.
    Empty (the default) is the loopback, zero-configuration channel: plaintext, no token."""

    ca: bytes | None = None
    token: str | None = None
    cert: bytes | None = None
    key: bytes | None = None
    server_name: str | None = None

    @property
    def tls(self) -> bool:
        return self.ca is not None

    @classmethod
    def resolve(
        cls,
        *,
        ca: str | None = None,
        token: str | None = None,
        token_file: str | None = None,
        cert: str | None = None,
        key: str | None = None,
        server_name: str | None = None,
        home: str | os.PathLike[str] | None = None,
        role: Role = "client",
        env: Mapping[str, str] | None = None,
    ) -> Credentials:
        """Each item from its argument, else its SWARM_* variable, else the state directory
        (`home` or $SWARM_HOME). `role` picks the state directory's token: the admin token for
        the CLI and the SDK, the host join token (and host certificate) for hosts."""
        e = os.environ if env is None else env
        d = state_dir(home or e.get("SWARM_HOME"))

        def in_home(name: str) -> str | None:
            return str(d / name) if d is not None and (d / name).exists() else None

        ca_path = ca or e.get("SWARM_CA") or in_home(pki.CA_CERT)
        tok = token or e.get("SWARM_TOKEN")
        if not tok:
            tok_path = (
                token_file
                or e.get("SWARM_TOKEN_FILE")
                or in_home(pki.ADMIN_TOKEN if role == "client" else pki.HOST_TOKEN)
            )
            tok = read_token(tok_path) if tok_path else None
        cert_path = cert or e.get("SWARM_CERT")
        key_path = key or e.get("SWARM_KEY")
        if cert_path is None and role == "host":
            cert_path, key_path = in_home(pki.HOST_CERT), in_home(pki.HOST_KEY)
        if (cert_path is None) != (key_path is None):
            raise CredentialsError("a client certificate needs its key, and a key its certificate")
        return cls(
            ca=_read(ca_path, "CA bundle") if ca_path else None,
            token=tok or None,
            cert=_read(cert_path, "certificate") if cert_path else None,
            key=_read(key_path, "key") if key_path else None,
            server_name=server_name or e.get("SWARM_TLS_SERVER_NAME") or None,
        )

    # ---- channels ----

    def _channel_args(
        self, options: Sequence[tuple[str, Any]]
    ) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
        opts = list(options)
        if self.ca is None:
            if self.cert is not None:
                raise CredentialsError("a client certificate needs TLS: pass the CA bundle too")
            return None, opts
        if self.server_name:
            opts.append(("grpc.ssl_target_name_override", self.server_name))
        creds = grpc.ssl_channel_credentials(
            root_certificates=self.ca, private_key=self.key, certificate_chain=self.cert
        )
        return creds, opts

    def aio_channel(
        self, address: str, options: Sequence[tuple[str, Any]] = ()
    ) -> grpc.aio.Channel:
        creds, opts = self._channel_args(options)
        if creds is None:
            return grpc.aio.insecure_channel(address, options=opts)
        return grpc.aio.secure_channel(address, creds, options=opts)

    def channel(self, address: str, options: Sequence[tuple[str, Any]] = ()) -> grpc.Channel:
        """A blocking channel (harnesses and scripts)."""
        creds, opts = self._channel_args(options)
        if creds is None:
            return grpc.insecure_channel(address, options=opts)
        return grpc.secure_channel(address, creds, options=opts)

    def bind(self, stub: S) -> S:
        """`stub` with the token bound into every method's metadata (no token: unchanged)."""
        if self.token is None:
            return stub
        metadata = (("authorization", f"Bearer {self.token}"),)
        for name, method in list(vars(stub).items()):
            if callable(method):
                setattr(stub, name, functools.partial(method, metadata=metadata))
        return stub


def add_client_args(parser: Any, *, role: Role = "client") -> None:
    """--state-dir, --ca, --token-file, --cert/--key, --tls-server-name (all optional)."""
    group = parser.add_argument_group("credentials (default: SWARM_* variables, $SWARM_HOME)")
    group.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="a directory made by `swarm certs init` (default $SWARM_HOME)",
    )
    group.add_argument("--ca", default=None, metavar="PEM", help="CA bundle to verify the server")
    group.add_argument("--token-file", default=None, metavar="FILE", help="bearer token file")
    if role == "host":
        group.add_argument("--cert", default=None, metavar="PEM", help="host certificate (mTLS)")
        group.add_argument("--key", default=None, metavar="PEM", help="its private key")
    group.add_argument(
        "--tls-server-name",
        default=None,
        metavar="NAME",
        help="name the server's certificate must carry (default: the address)",
    )


def client_credentials(args: Any, *, role: Role = "client") -> Credentials:
    return Credentials.resolve(
        ca=getattr(args, "ca", None),
        token_file=getattr(args, "token_file", None),
        cert=getattr(args, "cert", None),
        key=getattr(args, "key", None),
        server_name=getattr(args, "tls_server_name", None),
        home=getattr(args, "state_dir", None),
        role=role,
    )
