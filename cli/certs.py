"""`swarm certs`: the swarm's CA, certificates and tokens in one state directory.

    swarm certs init --san 10.0.0.5          # CA, server + host certificates, admin + join tokens
    swarm certs token --namespace tenant-a   # a client token for one namespace (printed once)
    swarm certs revoke swarm_AbC...          # the running orchestrator drops it within a second
    swarm certs host gpu-box-1               # a host certificate that may join as gpu-box-1 only
    swarm certs server --san 10.0.0.6        # a new server certificate (same CA) for more names

The directory defaults to $SWARM_HOME, else ~/.swarm. Everything in it is owner-only (0600 in a
0700 directory): it holds the CA's key and the admin token.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from swarm.common import pki
from swarm.server.auth import Role, TokenFileError, parse_tokens


def _dir(args: argparse.Namespace) -> Path:
    value = args.dir or os.environ.get("SWARM_HOME") or "~/.swarm"
    return Path(value).expanduser()


def register(sub: Any) -> None:
    certs = sub.add_parser(
        "certs",
        help="create the swarm's CA, certificates and tokens (secure multi-machine swarms)",
        description="Manage the state directory that `swarm up`, `swarm host`, the CLI and the "
        "SDK read through --state-dir or $SWARM_HOME.",
    )
    certs.add_argument(
        "--dir", default=None, help="state directory (default: $SWARM_HOME, else ~/.swarm)"
    )
    cmds = certs.add_subparsers(dest="certs_command", metavar="ACTION", required=True)

    init = cmds.add_parser("init", help="a new CA, server and host certificates, and tokens")
    init.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="an address or DNS name hosts and clients use to reach the orchestrator "
        "(repeatable; loopback and this machine's hostname are always included)",
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA")
    init.set_defaults(run=_init)

    token = cmds.add_parser("token", help="add a token to the token file and print it")
    token.add_argument("--namespace", default="default", help="the namespace it grants")
    token.add_argument("--role", default="client", choices=[r.value for r in Role])
    token.add_argument(
        "--host-id", default="*", help="role host: the one host id it may join as (default any)"
    )
    token.set_defaults(run=_token)

    revoke = cmds.add_parser(
        "revoke",
        help="remove a token (the whole token, or its last 6+); one that starts with '-' (an "
        "older token's suffix may) after a '--': swarm certs revoke -- -AbC123",
    )
    revoke.add_argument("token")
    revoke.set_defaults(run=_revoke)

    host = cmds.add_parser("host", help="a host certificate (mTLS) pinned to one host id")
    host.add_argument("host_id")
    host.set_defaults(run=_host)

    server = cmds.add_parser(
        "server", help="a new server certificate from the same CA (restart the orchestrator)"
    )
    server.add_argument(
        "--san",
        action="append",
        default=[],
        metavar="NAME",
        help="an address or DNS name it lists besides loopback and this machine's (repeatable)",
    )
    server.set_defaults(run=_server)


def _init(args: argparse.Namespace) -> int:
    d = _dir(args)
    try:
        pki.init_state(d, server_names=args.san, force=args.force)
    except FileExistsError as exc:
        print(f"swarm certs init: {exc}", file=sys.stderr)
        return 2
    print(
        f"swarm state directory {d} (owner-only):\n"
        f"  {pki.CA_CERT}  the CA bundle every client and host verifies the server with\n"
        f"  {pki.SERVER_CERT}/{pki.SERVER_KEY}  the orchestrator's certificate\n"
        f"  {pki.HOST_CERT}/{pki.HOST_KEY}  a host certificate (for --client-ca mTLS)\n"
        f"  {pki.CLIENT_CERT}/{pki.CLIENT_KEY}  a client certificate (for --client-ca mTLS)\n"
        f"  {pki.ADMIN_TOKEN}  the admin token; {pki.HOST_TOKEN}  the host join token\n"
        f"  {pki.TOKENS}  the orchestrator's token file (reloaded when it changes)\n"
        f"next:\n"
        f"  export SWARM_HOME={d}\n"
        f"  swarm up --bind 0.0.0.0          # TLS and tokens from $SWARM_HOME\n"
        f"  on another machine, with {pki.CA_CERT} and {pki.HOST_TOKEN} copied to DIR:\n"
        f"  SWARM_HOME=DIR swarm host --connect ADDR:PORT"
    )
    return 0


def _load(path: Path) -> str:
    try:
        text = path.read_text()
        parse_tokens(text, str(path))
    except (OSError, TokenFileError) as exc:
        raise SystemExit(f"swarm certs: {exc} (run `swarm certs init` first?)") from None
    return text


def _token(args: argparse.Namespace) -> int:
    path = _dir(args) / pki.TOKENS
    text = _load(path)
    role = Role(args.role)
    scope = args.host_id if role is Role.HOST else args.namespace
    token = pki.new_token()
    line = f"{token} {role.value} {scope}\n"
    parse_tokens(line)  # refuses a bad namespace before the file changes
    pki.write_private(path, text + ("" if text.endswith("\n") or not text else "\n") + line)
    print(token)
    return 0


def _revoke(args: argparse.Namespace) -> int:
    path = _dir(args) / pki.TOKENS
    text = _load(path)
    needle = args.token.strip()
    if len(needle) < 6:
        print(
            "swarm certs revoke: give the token or at least its last 6 characters", file=sys.stderr
        )
        return 2
    kept, gone = [], 0
    for line in text.splitlines(keepends=True):
        first = line.split("#", 1)[0].split()
        if first and (first[0] == needle or first[0].endswith(needle)):
            gone += 1
        else:
            kept.append(line)
    if gone != 1:
        print(f"swarm certs revoke: {gone} tokens match; give more of it", file=sys.stderr)
        return 2
    pki.write_private(path, "".join(kept))
    print("revoked: a running orchestrator stops accepting it within a second")
    return 0


def _ca(d: Path, command: str) -> pki.Issued | None:
    try:
        return pki.Issued((d / pki.CA_CERT).read_bytes(), (d / pki.CA_KEY).read_bytes())
    except OSError as exc:
        print(f"swarm certs {command}: {exc} (run `swarm certs init` first?)", file=sys.stderr)
        return None


def _server(args: argparse.Namespace) -> int:
    """Hosts and clients keep trusting the same CA: only the orchestrator restarts."""
    d = _dir(args)
    ca = _ca(d, "server")
    if ca is None:
        return 2
    names = [*pki.default_server_names(), *args.san]
    issued = pki.issue(ca, "swarm orchestrator", server_names=names, client=False)
    pki.write_private(d / pki.SERVER_KEY, issued.key)
    pki.write_private(d / pki.SERVER_CERT, issued.cert)
    print(f"{d / pki.SERVER_CERT}: lists {', '.join(names)}; restart the orchestrator to serve it")
    return 0


def _host(args: argparse.Namespace) -> int:
    d = _dir(args)
    if not args.host_id.replace("-", "").replace("_", "").replace(".", "").isalnum():
        print("swarm certs host: a host id of letters, digits, '-', '_' and '.'", file=sys.stderr)
        return 2
    ca = _ca(d, "host")
    if ca is None:
        return 2
    issued = pki.issue(ca, args.host_id, client=True)
    for suffix, data in (("pem", issued.cert), ("key", issued.key)):
        pki.write_private(d / f"host-{args.host_id}.{suffix}", data)
    print(f"{d}/host-{args.host_id}.pem and .key: pass --cert/--key to `swarm host`")
    return 0
