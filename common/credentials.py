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

import datetime
import functools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

import grpc
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from swarm.common import pki

S = TypeVar("S")
Role = Literal["client", "host"]


class CredentialsError(ValueError):
    """Credentials named but unusable; the message names the file, what is wrong with it and
    the flag or variable that names another."""


# Where each item comes from, for the messages: the flag, then the variable.
WHERE = {
    "CA bundle": "--ca PEM or SWARM_CA",
    "token file": "--token-file FILE, SWARM_TOKEN_FILE, or the token itself in SWARM_TOKEN",
    "certificate": "--cert PEM or SWARM_CERT",
    "key": "--key PEM or SWARM_KEY",
}


def read_file(path: str | os.PathLike[str], what: str, where: str | None = None) -> bytes:
    """The bytes of a credential file, or a CredentialsError naming it and what to pass.
    A private key or a token readable by others is refused, as ssh refuses one: anyone on the
    machine could already use it."""
    where = where or WHERE.get(what, "")
    hint = f"; pass another with {where}" if where else ""
    p = Path(path).expanduser()
    try:
        data = p.read_bytes()
        mode = p.stat().st_mode
    except OSError as exc:
        raise CredentialsError(f"{what} {p}: cannot read it ({exc.strerror}){hint}") from None
    if what in ("token file", "key") and mode & 0o077:
        raise CredentialsError(
            f"{what} {p} is readable by other users (mode {mode & 0o777:o}): `chmod 600 {p}`, "
            f"and treat it as leaked if others could reach it{hint}"
        )
    return data


def check_certs(data: bytes, path: str | os.PathLike[str], what: str) -> list[x509.Certificate]:
    """The certificates of a PEM file: refused, naming the file, when none parse or one is
    expired (or not valid yet): TLS would only say that the handshake failed."""
    where = WHERE.get(what, "")
    hint = f"; pass another with {where}" if where else ""
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise CredentialsError(f"{what} {path}: not a PEM certificate{hint}") from None
    now = datetime.datetime.now(datetime.UTC)
    for cert in certs:
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise CredentialsError(
                f"{what} {path}: {cert.subject.rfc4514_string()} is valid from "
                f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}, "
                f"not now: issue a new one (`swarm certs init --force`, `swarm certs host`){hint}"
            )
    return certs


def check_issued_by(
    cert: x509.Certificate, cert_path: str, cas: list[x509.Certificate], ca_path: str
) -> None:
    """Refuse a client certificate that the CA bundle in use did not issue: the server, which
    trusts the same CA, would close the handshake without saying why."""
    for ca in cas:
        if ca.subject != cert.issuer:
            continue
        try:
            cert.verify_directly_issued_by(ca)
        except (ValueError, TypeError, InvalidSignature):
            continue
        return
    raise CredentialsError(
        f"certificate {cert_path} was not issued by the CA bundle {ca_path}: the orchestrator "
        "would refuse it. Use the certificate and ca.pem of one state directory (--cert/--key "
        "and --ca, or SWARM_CERT/SWARM_KEY and SWARM_CA)"
    )


def read_token(path: str | os.PathLike[str]) -> str:
    raw = read_file(path, "token file")
    try:
        token = raw.decode().strip()
    except UnicodeDecodeError:
        token = ""
    if not token or len(token.split()) != 1:
        raise CredentialsError(
            f"token file {path}: want one token (as `swarm certs token` prints it), found "
            f"{'nothing' if not token else 'more than one word'}; pass another with "
            f"{WHERE['token file']}"
        )
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
        if cert_path is None:  # from the state directory: a host's, or a client's (mTLS)
            cert_name, key_name = (
                (pki.HOST_CERT, pki.HOST_KEY)
                if role == "host"
                else (pki.CLIENT_CERT, pki.CLIENT_KEY)
            )
            cert_path, key_path = in_home(cert_name), in_home(key_name)
        if (cert_path is None) != (key_path is None):
            raise CredentialsError(
                f"a client certificate needs its key, and a key its certificate: got only "
                f"{cert_path or key_path}; pass both, with --cert and --key "
                "(or SWARM_CERT and SWARM_KEY)"
            )
        ca_pem = read_file(ca_path, "CA bundle") if ca_path else None
        cert_pem = read_file(cert_path, "certificate") if cert_path else None
        cas = check_certs(ca_pem, ca_path, "CA bundle") if ca_pem and ca_path else []
        if cert_pem is not None and cert_path is not None:
            mine = check_certs(cert_pem, cert_path, "certificate")
            if cas:
                check_issued_by(mine[0], cert_path, cas, str(ca_path))
        return cls(
            ca=ca_pem,
            token=tok or None,
            cert=cert_pem,
            key=read_file(key_path, "key") if key_path else None,
            server_name=server_name or e.get("SWARM_TLS_SERVER_NAME") or None,
        )

    # ---- channels ----

    def _channel_args(
        self, options: Sequence[tuple[str, Any]]
    ) -> tuple[grpc.ChannelCredentials | None, list[tuple[str, Any]]]:
        opts = list(options)
        if self.ca is None:
            if self.cert is not None:
                raise CredentialsError(
                    "a client certificate needs TLS: pass the CA bundle too (--ca PEM or SWARM_CA)"
                )
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
    whose = "host" if role == "host" else "client"
    group.add_argument(
        "--cert",
        default=None,
        metavar="PEM",
        help=f"{whose} certificate, when the orchestrator wants mTLS (default: $SWARM_CERT, "
        f"else the state directory's {whose}.pem)",
    )
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
