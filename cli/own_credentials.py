"""What `swarm up` gives its own hosts and its own status channel, from whatever secures its
orchestrator, so that a secured `swarm up` never starts hosts that cannot join.

The rule: the children's environment and the status channel's credentials are derived from the
orchestrator's resolved security (security.ServerSecurity), not from the state directory alone:

* TLS on: the CA bundle the server's certificate chains to, from `--ca`, else $SWARM_CA, else
  the state directory's ca.pem; none of them: refused, naming --ca.
* Tokens on: a host join token for any host id (`host *`) and an admin (else client) token,
  both read from the orchestrator's own token file; none in it: refused, naming the file and
  the line to add.
* mTLS on (--client-ca): a host certificate ($SWARM_CERT/$SWARM_KEY, else the state
  directory's host.pem) and a client certificate for the status channel (client.pem, else the
  host's); none: refused, naming SWARM_CERT and SWARM_KEY.

Nothing secured and no state directory: nothing to give (the laptop path).
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from swarm.common import pki
from swarm.common.credentials import Credentials, CredentialsError, read_file, state_dir
from swarm.server.auth import Role, TokenFileError, parse_tokens
from swarm.server.security import ServerSecurity


def _tokens_for_children(path: Path) -> tuple[str, str]:
    """(a `host *` join token, an admin or else client token) from the token file."""
    try:
        grants = parse_tokens(path.read_text(), str(path))
    except (OSError, TokenFileError, UnicodeDecodeError) as exc:
        raise CredentialsError(f"token file {path}: {exc}; pass --tokens FILE") from None
    host = next((t for t, g in grants.items() if g.role is Role.HOST and g.scope == "*"), None)
    client = next((t for t, g in grants.items() if g.role is Role.ADMIN), None) or next(
        (t for t, g in grants.items() if g.role is Role.CLIENT), None
    )
    if host is None:
        raise CredentialsError(
            f"token file {path} has no host join token for any host id, so the hosts of "
            "`swarm up` could not join: add a line `<token> host *` (`swarm certs token --role "
            "host` adds one to a state directory's file)"
        )
    if client is None:
        raise CredentialsError(
            f"token file {path} has no admin or client token for `swarm up` to watch its "
            "hosts with: add a line `<token> admin default`"
        )
    return host, client


def _first(*paths: str | Path | None) -> Path | None:
    for p in paths:
        if p and Path(p).exists():
            return Path(p)
    return None


def own_credentials(
    args: argparse.Namespace, server: ServerSecurity, env: Mapping[str, str]
) -> tuple[dict[str, str], Credentials | None]:
    """(environment for the children, credentials of the status channel); raises
    CredentialsError naming the flag to pass when the hosts could not join."""
    home = state_dir(getattr(args, "state_dir", None) or env.get("SWARM_HOME"))
    child_env = {"SWARM_HOME": str(home)} if home is not None else {}
    if not (server.tls or server.auth):
        return child_env, None

    def in_home(name: str) -> Path | None:
        return home / name if home is not None else None

    ca_path = _first(getattr(args, "ca", None), env.get("SWARM_CA"), in_home(pki.CA_CERT))
    ca = None
    if server.tls:
        if ca_path is None:
            raise CredentialsError(
                "TLS is on but no CA bundle was given for the hosts of `swarm up` to verify the "
                "orchestrator's certificate with: pass --ca PEM (or set SWARM_CA), or run "
                "`swarm certs init` and pass --state-dir DIR"
            )
        ca = read_file(ca_path, "CA bundle", "--ca")
        child_env["SWARM_CA"] = str(ca_path)
    token = None
    if server.tokens is not None:
        host_token, token = _tokens_for_children(server.tokens)
        child_env["SWARM_TOKEN"] = host_token
    cert = key = None
    if server.client_ca is not None:
        host_cert = _first(env.get("SWARM_CERT"), in_home(pki.HOST_CERT))
        host_key = _first(env.get("SWARM_KEY"), in_home(pki.HOST_KEY))
        if host_cert is None or host_key is None:
            raise CredentialsError(
                "mTLS is on (--client-ca) but there is no host certificate for the hosts of "
                "`swarm up`: set SWARM_CERT and SWARM_KEY, or pass --state-dir DIR made by "
                "`swarm certs init`"
            )
        child_env.update(SWARM_CERT=str(host_cert), SWARM_KEY=str(host_key))
        client_cert = _first(in_home(pki.CLIENT_CERT)) or host_cert
        client_key = _first(in_home(pki.CLIENT_KEY)) or host_key
        cert = read_file(client_cert, "client certificate", "SWARM_CERT")
        key = read_file(client_key, "client key", "SWARM_KEY")
    # The hosts inherit SWARM_TLS_SERVER_NAME (a certificate that lists no loopback name).
    server_name = env.get("SWARM_TLS_SERVER_NAME") or None
    return child_env, Credentials(ca=ca, token=token, cert=cert, key=key, server_name=server_name)
