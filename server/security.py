"""The orchestrator's side of security: TLS on its port, the token file, and the refusal to
expose an unprotected port.

    python -m swarm.server --bind 0.0.0.0 --state-dir ~/.swarm        # after `swarm certs init`
    python -m swarm.server --bind 0.0.0.0 --tls-cert s.pem --tls-key s.key --tokens tokens

Secure by default: listening on anything but loopback needs TLS *and* tokens, or the loudly
named --insecure-i-know-what-i-am-doing. On loopback nothing is needed (the laptop path), and
whatever is given is used. Environment: SWARM_HOME (a state directory), SWARM_TLS_CERT,
SWARM_TLS_KEY, SWARM_TOKENS, SWARM_CLIENT_CA (mTLS: every peer must present a certificate from
it; hosts may then join by certificate alone).
"""

from __future__ import annotations

import argparse
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc
from swarm.common import pki
from swarm.common.credentials import CredentialsError, check_certs, read_file, state_dir
from swarm.server import host_bindings
from swarm.server.auth import AuthInterceptor, TokenStore
from swarm.server.host_bindings import HostBindings
from swarm.server.tenancy import Authority

INSECURE_FLAG = "--insecure-i-know-what-i-am-doing"


class InsecureBindError(ValueError):
    """Listening beyond loopback without TLS and authentication; the message says what to pass."""


def is_loopback(bind: str) -> bool:
    name = bind.strip("[]")
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False  # a hostname other than localhost: it may resolve to anything


@dataclass(frozen=True, slots=True)
class ServerSecurity:
    cert: bytes | None = None  # PEM chain
    key: bytes | None = None
    tokens: Path | None = None
    client_ca: bytes | None = None  # mTLS: require client certificates from this CA
    insecure: bool = False  # the override: serve beyond loopback unprotected

    @property
    def tls(self) -> bool:
        return self.cert is not None

    @property
    def auth(self) -> bool:
        return self.tokens is not None

    def check_bind(self, bind: str) -> None:
        if is_loopback(bind) or self.insecure or (self.tls and self.auth):
            return
        missing = " and ".join(
            w for w, ok in (("TLS", self.tls), ("authentication", self.auth)) if not ok
        )
        raise InsecureBindError(
            f"refusing to listen on {bind} without {missing}: anyone who can reach the port "
            "could run tasks, read results and join as a host. Run `swarm certs init` once, then "
            "pass --state-dir DIR (or set SWARM_HOME=DIR); or pass --tls-cert, --tls-key and "
            f"--tokens; or, on a network you trust completely, {INSECURE_FLAG}."
        )

    def server_credentials(self) -> grpc.ServerCredentials | None:
        if self.cert is None or self.key is None:
            return None
        return grpc.ssl_server_credentials(
            [(self.key, self.cert)],
            root_certificates=self.client_ca,
            require_client_auth=self.client_ca is not None,
        )

    def authority(self) -> Authority:
        """The grants of the token file, and the host id bindings kept beside it."""
        if self.tokens is None:
            return Authority()
        return Authority(
            TokenStore(self.tokens),
            cert_hosts=self.client_ca is not None,
            host_bindings=HostBindings.open(self.tokens.parent / host_bindings.FILE_NAME),
        )

    @staticmethod
    def interceptors(authority: Authority) -> list[grpc.aio.ServerInterceptor]:
        if authority.tokens is None:
            return []
        return [AuthInterceptor(authority.tokens, cert_hosts=authority.cert_hosts)]

    @classmethod
    def resolve(
        cls,
        *,
        cert: str | None = None,
        key: str | None = None,
        tokens: str | None = None,
        client_ca: str | None = None,
        home: str | None = None,
        insecure: bool = False,
        env: Mapping[str, str] | None = None,
    ) -> ServerSecurity:
        """Each file from its flag, else its SWARM_* variable, else the state directory."""
        e = os.environ if env is None else env
        d = state_dir(home or e.get("SWARM_HOME"))

        def pick(flag: str | None, var: str, name: str | None) -> str | None:
            if flag or e.get(var):
                return flag or e.get(var)
            if d is not None and name is not None and (d / name).exists():
                return str(d / name)
            return None

        cert_p = pick(cert, "SWARM_TLS_CERT", pki.SERVER_CERT)
        key_p = pick(key, "SWARM_TLS_KEY", pki.SERVER_KEY)
        tokens_p = pick(tokens, "SWARM_TOKENS", pki.TOKENS)
        ca_p = pick(client_ca, "SWARM_CLIENT_CA", None)
        if (cert_p is None) != (key_p is None):
            raise CredentialsError(
                f"TLS needs both a certificate and its key: got only {cert_p or key_p}; pass "
                "--tls-cert PEM and --tls-key PEM (or SWARM_TLS_CERT and SWARM_TLS_KEY)"
            )
        if ca_p is not None and cert_p is None:
            raise CredentialsError(
                f"--client-ca {ca_p} (mTLS) needs TLS: pass --tls-cert and --tls-key too"
            )
        return cls(
            cert=_certs(cert_p, "server certificate", "--tls-cert PEM or SWARM_TLS_CERT"),
            key=read_file(key_p, "key", "--tls-key PEM or SWARM_TLS_KEY") if key_p else None,
            tokens=Path(tokens_p) if tokens_p else None,
            client_ca=_certs(ca_p, "client CA bundle", "--client-ca PEM or SWARM_CLIENT_CA"),
            insecure=insecure,
        )


def _certs(path: str | None, what: str, where: str) -> bytes | None:
    """A PEM file of certificates, checked (readable, parses, not expired) so that a bad one
    stops the start with its name rather than failing every handshake later."""
    if path is None:
        return None
    data = read_file(path, what, where)
    try:
        check_certs(data, path, what)
    except CredentialsError as exc:
        raise CredentialsError(f"{exc}; pass another with {where}") from None
    return data


def add_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("security (default: SWARM_* variables, $SWARM_HOME)")
    g.add_argument(
        "--state-dir",
        default=None,
        metavar="DIR",
        help="a directory made by `swarm certs init` (default $SWARM_HOME)",
    )
    g.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate chain")
    g.add_argument("--tls-key", default=None, metavar="PEM", help="its private key")
    g.add_argument(
        "--tokens",
        default=None,
        metavar="FILE",
        help="token file (`token role scope` lines); reloaded when it changes",
    )
    g.add_argument(
        "--client-ca",
        default=None,
        metavar="PEM",
        help="mTLS: require every peer's certificate to chain to this CA",
    )
    g.add_argument(
        INSECURE_FLAG,
        dest="insecure",
        action="store_true",
        help="listen beyond loopback without TLS and tokens (never on a shared network)",
    )


def from_args(args: argparse.Namespace) -> ServerSecurity:
    return ServerSecurity.resolve(
        cert=args.tls_cert,
        key=args.tls_key,
        tokens=args.tokens,
        client_ca=args.client_ca,
        home=args.state_dir,
        insecure=args.insecure,
    )


def args_of(args: argparse.Namespace) -> list[str]:
    """The same options as command-line arguments, for a child process (`swarm up`)."""
    out: list[str] = []
    for flag in ("state_dir", "tls_cert", "tls_key", "tokens", "client_ca"):
        value = getattr(args, flag, None)
        if value:
            out += [f"--{flag.replace('_', '-')}", str(value)]
    if getattr(args, "insecure", False):
        out.append(INSECURE_FLAG)
    return out
