"""The swarm's own certificate authority: a CA, server and host certificates, and tokens.

`swarm certs init` calls `init_state` once; `swarm up`, `swarm host`, the CLI and the SDK then
find everything in that state directory (see swarm.common.credentials). The CA's key stays in
the directory it was made in; only ca.pem travels to other machines, with a host's own
certificate or join token.

Keys are ECDSA P-256: a handshake costs a fraction of an RSA-3072 one, and every TLS stack we
talk to (grpc's BoringSSL, Python's OpenSSL) speaks it.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

CA_DAYS = 3650
LEAF_DAYS = 825  # what browsers accept for a leaf; a swarm rotates long before

# File names inside a state directory: one place, so writer and readers agree.
CA_CERT = "ca.pem"
CA_KEY = "ca.key"
SERVER_CERT = "server.pem"
SERVER_KEY = "server.key"
HOST_CERT = "host.pem"
HOST_KEY = "host.key"
CLIENT_CERT = "client.pem"
CLIENT_KEY = "client.key"
TOKENS = "tokens"
ADMIN_TOKEN = "admin.token"
HOST_TOKEN = "host.token"


# The organizational unit of a client certificate: with mTLS on, it admits a client to the TLS
# handshake (its token still decides what it may do), and it is never a host credential.
CLIENT_UNIT = "swarm-client"


@dataclass(frozen=True, slots=True)
class Issued:
    """A PEM certificate and its PEM private key."""

    cert: bytes
    key: bytes


def new_token() -> str:
    """256 random bits in hex: fits in call metadata and a shell variable, and no part of it
    starts with "-", which a command line would read as an option (`swarm certs revoke SUFFIX`;
    a urlsafe token's suffix could)."""
    return "swarm_" + secrets.token_hex(32)


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _now() -> datetime.datetime:
    # Backdated a little: a peer whose clock is a minute behind must not see "not yet valid".
    return datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=5)


def make_ca(name: str = "swarm CA") -> Issued:
    key = _key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + datetime.timedelta(days=CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def _san(names: Iterable[str]) -> list[x509.GeneralName]:
    out: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):  # keep order, drop repeats
        try:
            out.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            out.append(x509.DNSName(name))
    return out


def issue(
    ca: Issued,
    common_name: str,
    *,
    server_names: Iterable[str] = (),
    client: bool,
    unit: str | None = None,
) -> Issued:
    """A leaf signed by `ca`. Server certificates list `server_names` (DNS names and IP
    addresses) as subject alternative names, which is what a client checks; a host certificate
    carries its identity in the common name; `unit` (CLIENT_UNIT) marks a client's."""
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):
        raise ValueError("the CA key is not an EC key made by swarm certs init")
    key = _key()
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if unit is not None:
        subject.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, unit))
    usage = [ExtendedKeyUsageOID.CLIENT_AUTH] if client else [ExtendedKeyUsageOID.SERVER_AUTH]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(subject))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now())
        .not_valid_after(_now() + datetime.timedelta(days=LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage(usage), critical=False)
    )
    names = _san(server_names)
    if names and not client:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return Issued(cert.public_bytes(serialization.Encoding.PEM), _pem_key(key))


def unit_of(cert_pem: bytes) -> str | None:
    """A certificate's organizational unit (CLIENT_UNIT for a client's), if it has one."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    units = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    value = units[0].value if units else None
    return value if isinstance(value, str) else None


def default_server_names() -> list[str]:
    """Loopback and this machine's names: enough for a swarm on one machine, and for hosts
    that reach this one by its hostname. Other addresses are added with --san."""
    names = ["localhost", "127.0.0.1", "::1"]
    try:
        hostname = socket.gethostname()
        names += [hostname, socket.getfqdn()]
    except OSError:  # pragma: no cover - a machine without a name
        pass
    return names


def write_private(path: Path, data: bytes | str) -> None:
    """Create `path` readable by its owner only, from the first byte on: a key never exists,
    even for a moment, with the umask's wider permissions."""
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def init_state(
    state_dir: Path,
    *,
    server_names: Iterable[str] = (),
    host_name: str = "*",
    force: bool = False,
) -> dict[str, Path]:
    """Create the CA, a server certificate, a host certificate (common name `host_name`: the
    host id it may claim, "*" any), a client certificate (for clients when the orchestrator
    wants mTLS), an admin token and a host join token in `state_dir` (mode 0700, every file
    0600). Refuses to overwrite an existing CA
    unless `force`: a new CA would silently lock out every host that trusts the old one."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(state_dir, 0o700)
    if (state_dir / CA_CERT).exists() and not force:
        raise FileExistsError(
            f"{state_dir / CA_CERT} exists: this directory already holds a swarm CA "
            "(pass --force to replace it and every certificate and token)"
        )
    ca = make_ca()
    server = issue(
        ca,
        "swarm orchestrator",
        server_names=[*default_server_names(), *server_names],
        client=False,
    )
    host = issue(ca, host_name, client=True)
    client = issue(ca, "swarm client", client=True, unit=CLIENT_UNIT)
    admin, join = new_token(), new_token()
    files: dict[str, bytes | str] = {
        CA_CERT: ca.cert,
        CA_KEY: ca.key,
        SERVER_CERT: server.cert,
        SERVER_KEY: server.key,
        HOST_CERT: host.cert,
        HOST_KEY: host.key,
        CLIENT_CERT: client.cert,
        CLIENT_KEY: client.key,
        ADMIN_TOKEN: admin + "\n",
        HOST_TOKEN: join + "\n",
        TOKENS: (
            "# token role namespace-or-host-id   (roles: client, admin, host; reloaded live)\n"
            f"{admin} admin default\n"
            f"{join} host *\n"
        ),
    }
    out: dict[str, Path] = {}
    for name, data in files.items():
        path = state_dir / name
        write_private(path, data)
        out[name] = path
    return out
