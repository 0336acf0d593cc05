"""Where a call may act: its credential's namespace, its own client ids, its own host id.

The interceptor (swarm.server.auth) has already refused calls without a valid credential;
the services ask an `Authority` here, at the entry of each RPC, what that credential grants:

* `namespace(context, requested)`: a token's namespace is the only one its calls act in; a
  request naming another is PERMISSION_DENIED (naming both). Every task id, dependency, Wait,
  GetTasks and Cancel then resolves inside it (task_key), and `ids()` refuses ids holding the
  namespace separator, so no id can spell a key of another namespace.
* `claim_client(namespace, client_id, live)`: a client id belongs to the namespace that first
  opened it, for as long as the orchestrator remembers that client: a Session or a Submit under
  another namespace's client id cannot take over its results.
* `claim_host(context, host_id)`: a host id belongs to the credential that first claimed it
  (a host token, or a verified certificate), so no other credential can take it over, while
  the same credential reconnects as itself. The bindings are kept beside the token file
  (host_bindings.py), so they hold across a restart of the orchestrator.

With authentication off (`Authority()`, loopback only) every call is the OPEN grant and
requests choose their namespace as before; client ownership and separator checks still hold.
"""

from __future__ import annotations

from collections.abc import Container, Iterable

import grpc
from swarm.common import pki
from swarm.server import convert
from swarm.server.auth import OPEN, Grant, Role, TokenStore, bearer
from swarm.server.host_bindings import HostBindings
from swarm.server.keys import NS_SEP
from swarm.server.model import Rejected

CERT_PRINCIPAL = "cert:"  # a certificate's principal: this and its common name
# Client ids no client is attached to any more are forgotten past this many, oldest first.
MAX_REMEMBERED_CLIENTS = 100_000


def _denied(field: str, message: str) -> Rejected:
    return Rejected("PERMISSION_DENIED", field, message)


class Authority:
    def __init__(
        self,
        tokens: TokenStore | None = None,
        *,
        cert_hosts: bool = False,
        host_bindings: HostBindings | None = None,
    ) -> None:
        self.tokens = tokens
        self.cert_hosts = cert_hosts
        self.client_owner: dict[str, str] = {}  # client id -> namespace
        # host id -> principal (`or` would not do: an empty HostBindings is falsy)
        self.host_bindings = HostBindings(None) if host_bindings is None else host_bindings

    @property
    def enabled(self) -> bool:
        return self.tokens is not None

    def grant(self, context: grpc.aio.ServicerContext) -> Grant:
        """The caller's grant (the interceptor let only known tokens through)."""
        if self.tokens is None:
            return OPEN
        token = bearer(context.invocation_metadata())
        grant = self.tokens.lookup(token) if token is not None else None
        if grant is None:
            # Revoked between the interceptor's check and here, or an mTLS host (no token).
            raise Rejected("UNAUTHENTICATED", "", "no valid credential")
        return grant

    def namespace(self, context: grpc.aio.ServicerContext, requested: str) -> str:
        grant = self.grant(context)
        if grant is OPEN:
            return convert.namespace_of(requested)
        if requested and requested != grant.scope:
            raise _denied(
                "namespace", f"the token grants namespace {grant.scope!r}, not {requested!r}"
            )
        return grant.scope

    @staticmethod
    def ids(ids: Iterable[str], field: str = "task_ids") -> None:
        """Refuse an id holding the namespace separator: it could only be an attempt to name a
        task of another namespace (`tenant-a` + NS_SEP + id from the default namespace)."""
        for i, task_id in enumerate(ids):
            if NS_SEP in task_id:
                raise Rejected(
                    "INVALID_ARGUMENT", f"{field}[{i}]", "must hold printable characters only"
                )

    def claim_client(self, namespace: str, client_id: str, live: Container[str]) -> None:
        """Bind `client_id` to `namespace`, or refuse it when another namespace holds it.
        `live`: the client ids the core still has an outbox for; one it has forgotten may be
        taken anew (its results are gone with it)."""
        owner = self.client_owner.get(client_id)
        if owner is not None and owner != namespace and client_id in live:
            raise _denied("client_id", f"client {client_id!r} belongs to another namespace")
        if owner != namespace:
            self.client_owner.pop(client_id, None)  # re-insert: newest last, pruned last
            self.client_owner[client_id] = namespace
            if len(self.client_owner) > MAX_REMEMBERED_CLIENTS:
                self._prune(live)

    def _prune(self, live: Container[str]) -> None:
        for cid in list(self.client_owner):
            if len(self.client_owner) <= MAX_REMEMBERED_CLIENTS // 2:
                return
            if cid not in live:
                del self.client_owner[cid]

    def visible_client(self, grant: Grant, client_id: str) -> bool:
        """GetStatus lists other namespaces' clients to admins only."""
        return grant.is_admin or self.client_owner.get(client_id) == grant.scope

    def claim_host(self, context: grpc.aio.ServicerContext, host_id: str) -> None:
        """Bind `host_id` to the caller's host credential on first claim; refuse another
        credential later. The credential is the token, or (mTLS) the certificate's subject."""
        if self.tokens is None:
            return
        if bearer(context.invocation_metadata()) is not None:
            grant = self.grant(context)
        elif self.cert_hosts:
            grant = _cert_grant(context)
        else:
            raise Rejected("UNAUTHENTICATED", "", "a host needs a join token or a certificate")
        if grant.role is not Role.HOST:
            raise _denied("hello.host_id", f"a {grant.role.value} credential cannot join as a host")
        if grant.scope not in ("*", host_id):
            raise _denied(
                "hello.host_id", f"this credential may join as {grant.scope!r}, not {host_id!r}"
            )
        if not self.host_bindings.claim(host_id, grant.principal, self._valid_principal):
            raise _denied(
                "hello.host_id", f"host id {host_id!r} is bound to another host's credential"
            )

    def _valid_principal(self, principal: str) -> bool:
        """Whether the credential holding a host id still exists: a token still in the file
        (a revoked one's host ids are free again); a certificate always (no CRL)."""
        if principal.startswith(CERT_PRINCIPAL):
            return True
        return self.tokens is not None and self.tokens.has_principal(principal)


def _cert_grant(context: grpc.aio.ServicerContext) -> Grant:
    """A verified client certificate (the server requires and checks them in mTLS mode) as a
    host grant: its common name is the host id it may claim, "*" (the shared host certificate
    `swarm certs init` makes) any id. A client's certificate (pki.CLIENT_UNIT) only got its
    holder through the handshake: it is no host credential."""
    auth = context.auth_context()
    names = auth.get("x509_common_name") or []
    pems = auth.get("x509_pem_cert") or []
    if not names or not pems:
        raise Rejected("UNAUTHENTICATED", "", "a host needs a join token or a certificate")
    if pki.unit_of(pems[0]) == pki.CLIENT_UNIT:
        raise _denied("hello.host_id", "a client certificate cannot join as a host")
    cn = names[0].decode() if isinstance(names[0], bytes) else str(names[0])
    return Grant(Role.HOST, cn, f"{CERT_PRINCIPAL}{cn}")
