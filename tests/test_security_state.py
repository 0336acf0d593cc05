"""Issue 11, what outlives one process: host id bindings across an orchestrator restart, `swarm
up` given its security by explicit files, and credential errors that name the file."""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from swarm.cli.main import main as swarm_main
from swarm.client import Client
from swarm.common import pki
from swarm.common.credentials import Credentials, CredentialsError
from swarm.deploy.inproc import InProcessSwarm
from swarm.server import host_bindings
from swarm.server.host_bindings import HostBindings, HostBindingsError
from swarm.server.security import ServerSecurity

from tests.certs import add_token
from tests.helpers import ROOT
from tests.wire import join_host


@pytest.fixture
def home(tmp_path: Path) -> Path:
    d = tmp_path / "state"
    pki.init_state(d)
    return d


def host(home: Path, token: str) -> Credentials:
    return Credentials(ca=(home / pki.CA_CERT).read_bytes(), token=token)


# ---- host id bindings ----


def test_a_host_id_stays_bound_across_an_orchestrator_restart(home: Path) -> None:
    first, second = add_token(home, "--role", "host"), add_token(home, "--role", "host")
    with InProcessSwarm.secured(home, hosts=0) as s:
        assert join_host(s.address, host(home, first), "box-1")[0] == "welcome"
    bindings = [
        json.loads(line) for line in (home / host_bindings.FILE_NAME).read_text().splitlines()
    ]
    assert {"host_id": "box-1", "principal": f"host-token…{first[-6:]}"} in bindings
    # A new incarnation on the same state directory: the other credential is still refused.
    with InProcessSwarm.secured(home, hosts=0) as s:
        code, details = join_host(s.address, host(home, second), "box-1")
        assert code is grpc.StatusCode.PERMISSION_DENIED and "box-1" in details
        assert join_host(s.address, host(home, first), "box-1")[0] == "welcome"
    # Revoking the token that held it frees the id for the host's new token.
    assert swarm_main(["certs", "--dir", str(home), "revoke", first[-10:]]) == 0
    with InProcessSwarm.secured(home, hosts=0) as s:
        assert join_host(s.address, host(home, second), "box-1")[0] == "welcome"
        code, _ = join_host(s.address, host(home, first), "box-1")
        assert code is grpc.StatusCode.UNAUTHENTICATED


def test_the_bindings_file_is_owner_only_and_a_damaged_one_stops_the_start(home: Path) -> None:
    with InProcessSwarm.secured(home, hosts=1):
        pass
    path = home / host_bindings.FILE_NAME
    assert path.stat().st_mode & 0o777 == 0o600
    path.write_text(path.read_text() + "not json\n")
    with pytest.raises(HostBindingsError, match=rf"{path}:2: not a binding"):
        ServerSecurity.resolve(home=str(home), env={}).authority()
    proc = subprocess.run(
        [sys.executable, "-m", "swarm.server", "--port", "0", "--state-dir", str(home)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        env=_clean_env(),
    )
    assert proc.returncode == 2 and f"{path}:2: not a binding" in proc.stderr, proc.stderr


def test_bindings_stay_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_bindings, "MAX_BINDINGS", 10)
    path = tmp_path / "host-ids"
    b = HostBindings.open(path)
    for i in range(11):
        assert b.claim(f"h{i}", "p", lambda _p: True)
    assert len(b) == 5 and list(b.owners) == [f"h{i}" for i in range(6, 11)]
    assert list(HostBindings.open(path).owners) == list(b.owners)  # the file was rewritten
    assert not b.claim("h10", "q", lambda _p: True)  # held by a valid principal
    assert b.claim("h10", "q", lambda _p: False)  # its credential is gone: taken


# ---- swarm up from explicit files ----


def _up(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = ["up", "--port", "0", "--hosts", "1", "--agents-per-host", "2", "--journal", "memory"]
    return subprocess.Popen(
        [sys.executable, "-m", "swarm.cli.main", *argv, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SWARM_")}


def test_swarm_up_gives_its_hosts_what_explicit_files_secure_it_with(home: Path) -> None:
    files = [
        *("--tls-cert", str(home / pki.SERVER_CERT), "--tls-key", str(home / pki.SERVER_KEY)),
        *("--tokens", str(home / pki.TOKENS)),
    ]
    # Without the CA bundle its hosts could not verify the orchestrator: refused, naming --ca.
    proc = _up(*files, env=_clean_env())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--ca PEM" in err, err
    # With it: the hosts join (TLS, the file's host token), the status channel sees them.
    proc = _up(*files, "--ca", str(home / pki.CA_CERT), env=_clean_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("swarm listening on "), line
        with Client(line.split()[3], credentials=Credentials.resolve(home=home, env={})) as c:
            assert c.submit("echo", 5).result(timeout=20) == 5
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_swarm_up_over_mtls_gives_its_hosts_and_itself_certificates(home: Path) -> None:
    proc = _up("--state-dir", str(home), "--client-ca", str(home / pki.CA_CERT), env=_clean_env())
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # its status channel saw the host: both got in
        assert line.startswith("swarm listening on "), line
        creds = Credentials.resolve(home=home, env={})  # client.pem, picked up
        with Client(line.split()[3], credentials=creds) as c:
            assert c.submit("echo", 6).result(timeout=20) == 6
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert proc.returncode == 0


def test_swarm_up_refuses_a_token_file_without_a_host_token(home: Path, tmp_path: Path) -> None:
    tokens = tmp_path / "tokens"
    admin = (home / pki.ADMIN_TOKEN).read_text().strip()
    pki.write_private(tokens, f"{admin} admin default\n")
    proc = _up("--tokens", str(tokens), env=_clean_env())
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and str(tokens) in err and "host *" in err, err


# ---- credential errors name the file and what to pass ----


def test_a_missing_or_unreadable_file_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(CredentialsError, match=rf"CA bundle {missing}: cannot read.*--ca PEM"):
        Credentials.resolve(ca=str(missing), env={})
    with pytest.raises(CredentialsError, match=rf"token file {missing}.*--token-file"):
        Credentials.resolve(token_file=str(missing), env={})


def test_a_token_or_key_readable_by_others_is_refused(home: Path) -> None:
    token = home / pki.ADMIN_TOKEN
    token.chmod(0o644)
    with pytest.raises(CredentialsError, match=rf"{token} is readable by other.*chmod 600"):
        Credentials.resolve(home=home, env={})


def test_a_malformed_token_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "token"
    pki.write_private(path, "two words\n")
    with pytest.raises(CredentialsError, match=rf"token file {path}: want one token"):
        Credentials.resolve(token_file=str(path), env={})
    tokens = tmp_path / "tokens"
    pki.write_private(tokens, "short admin default\n")
    with pytest.raises(ValueError, match=rf"token file {tokens}:.*--tokens FILE"):
        ServerSecurity.resolve(tokens=str(tokens), env={}).authority()


def test_a_certificate_from_another_ca_is_named(home: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    pki.init_state(other)
    with pytest.raises(CredentialsError, match=rf"{other / pki.HOST_CERT} was not issued by"):
        Credentials.resolve(
            ca=str(home / pki.CA_CERT),
            cert=str(other / pki.HOST_CERT),
            key=str(other / pki.HOST_KEY),
            env={},
        )


def test_an_expired_certificate_is_named(home: Path, tmp_path: Path) -> None:
    ca = pki.Issued((home / pki.CA_CERT).read_bytes(), (home / pki.CA_KEY).read_bytes())
    path = tmp_path / "old.pem"
    pki.write_private(path, _expired(ca))
    with pytest.raises(CredentialsError, match=rf"certificate {path}: .* not now"):
        Credentials.resolve(
            ca=str(home / pki.CA_CERT), cert=str(path), key=str(home / pki.HOST_KEY), env={}
        )
    with pytest.raises(CredentialsError, match=rf"{path}.*--tls-cert PEM"):
        ServerSecurity.resolve(cert=str(path), key=str(home / pki.SERVER_KEY), env={})


def _expired(ca: pki.Issued) -> bytes:
    ca_cert = x509.load_pem_x509_certificate(ca.cert)
    ca_key = serialization.load_pem_private_key(ca.key, password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    long_ago = datetime.datetime(2020, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "old")]))
        .issuer_name(ca_cert.subject)
        .public_key(ec.generate_private_key(ec.SECP256R1()).public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(long_ago)
        .not_valid_after(long_ago + datetime.timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_a_server_certificate_is_reissued_for_more_names_from_the_same_ca(home: Path) -> None:
    ca_before = (home / pki.CA_CERT).read_bytes()
    assert swarm_main(["certs", "--dir", str(home), "server", "--san", "10.9.8.7"]) == 0
    assert (home / pki.CA_CERT).read_bytes() == ca_before
    cert = x509.load_pem_x509_certificate((home / pki.SERVER_CERT).read_bytes())
    cert.verify_directly_issued_by(x509.load_pem_x509_certificate(ca_before))
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "10.9.8.7" in {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    with InProcessSwarm.secured(home, hosts=1) as s:  # the new pair serves, hosts still join
        assert [h.host_id for h in s.wait_hosts(1)] == ["h0"]


def test_any_suffix_of_a_token_can_be_revoked(home: Path) -> None:
    """A new token has no "-" (hex), so no suffix of it reads as an option; an older urlsafe
    token whose suffix starts with one is revoked after "--", as the command's help says."""
    token = add_token(home, "--role", "host")
    assert token.startswith("swarm_") and "-" not in token
    tokens = home / pki.TOKENS
    line = next(ln for ln in tokens.read_text().splitlines() if ln.startswith(token))
    older = "swarm_" + "A" * 37 + "-x1y2z"  # as secrets.token_urlsafe may make
    pki.write_private(tokens, tokens.read_text() + line.replace(token, older, 1) + "\n")
    assert swarm_main(["certs", "--dir", str(home), "revoke", "--", "-x1y2z"]) == 0
    assert older not in tokens.read_text() and token in tokens.read_text()
    assert swarm_main(["certs", "--dir", str(home), "revoke", token[-7:]]) == 0
    assert token not in tokens.read_text()
