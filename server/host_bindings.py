"""Which credential owns each host id, kept in a small owner-only file so that an orchestrator
restarted on the same state directory still refuses a host id to every other credential.

    bindings = HostBindings.open(Path("~/.swarm/host-ids"))
    bindings.claim("gpu-box-1", "host-token…3kQ9xZ", valid=...)  # True: bound to it, or it now

The file (`host-ids`, beside the token file) holds one JSON object a line,
`{"host_id": ..., "principal": ...}`, appended when a host id is first claimed (a rare event:
once per host id), rewritten only when it is pruned. A principal names a credential without
its secret (auth.Grant.principal: a token's last characters, or a certificate's common name).

Why a file of its own and not the task journal: a binding belongs to the credentials, not to
the tasks. It must hold with the journal off, and it must go with the credentials: a new state
directory (a new CA and tokens) starts with none, while a journal may outlive a credential
rotation. It also keeps this state out of the journal's hot path.

A binding lasts while its credential is valid: one held by a token that is no longer in the
token file (revoked) is released on the next claim, so a host given a new token takes its id
back. Certificates are not revoked (no CRL), so their bindings stay until the file is edited
with the orchestrator stopped. At most MAX_BINDINGS are kept, the oldest claims dropped first.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from pathlib import Path

from swarm.common import pki

log = logging.getLogger("swarm.server.host_bindings")

FILE_NAME = "host-ids"
# Hosts default to the id hostname-pid, a new one at every host start: keep the file bounded.
MAX_BINDINGS = 10_000


class HostBindingsError(ValueError):
    """The bindings file cannot be read or written; the message names it."""


class HostBindings:
    def __init__(self, path: Path | None, owners: dict[str, str] | None = None) -> None:
        self.path = path  # None: in memory only (no token file to keep it beside)
        self.owners: dict[str, str] = owners or {}  # host id -> principal, oldest claim first

    @classmethod
    def open(cls, path: Path) -> HostBindings:
        """The bindings kept in `path` (none if it does not exist yet). A file that cannot be
        read or parsed stops the start: dropping it would let any credential take a host id."""
        owners: dict[str, str] = {}
        try:
            text = path.read_text() if path.exists() else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise HostBindingsError(f"host id bindings {path}: cannot read it: {exc}") from None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                host_id, principal = row["host_id"], row["principal"]
                if not isinstance(host_id, str) or not isinstance(principal, str):
                    raise TypeError("host_id and principal must be strings")
            except (ValueError, KeyError, TypeError) as exc:
                raise HostBindingsError(
                    f"host id bindings {path}:{n}: not a binding ({exc}); fix or delete the "
                    "line (with the orchestrator stopped), or delete the file to forget them all"
                ) from None
            owners.pop(host_id, None)
            owners[host_id] = principal
        return cls(path, owners)

    def __len__(self) -> int:
        return len(self.owners)

    def claim(self, host_id: str, principal: str, valid: Callable[[str], bool]) -> bool:
        """Bind `host_id` to `principal` unless another valid principal holds it. `valid(p)`:
        whether the credential `p` names still exists (a revoked token's bindings lapse)."""
        owner = self.owners.get(host_id)
        if owner == principal:
            return True
        if owner is not None and valid(owner):
            return False
        if owner is not None:
            log.info("host id %s: %s is no longer valid, %s takes it", host_id, owner, principal)
        self.owners.pop(host_id, None)
        self.owners[host_id] = principal
        if len(self.owners) > MAX_BINDINGS:
            for old in list(self.owners)[: len(self.owners) - MAX_BINDINGS // 2]:
                del self.owners[old]
            self._rewrite()
        else:
            self._append(host_id, principal)
        return True

    # ---- the file ----

    @staticmethod
    def _line(host_id: str, principal: str) -> str:
        return json.dumps({"host_id": host_id, "principal": principal}, ensure_ascii=False) + "\n"

    def _append(self, host_id: str, principal: str) -> None:
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, self._line(host_id, principal).encode())
            finally:
                os.close(fd)
        except OSError as exc:  # the binding holds in memory; say it will not survive a restart
            log.error("host id bindings %s: cannot write (%s): %s", self.path, host_id, exc)

    def _rewrite(self) -> None:
        if self.path is None:
            return
        try:
            pki.write_private(self.path, "".join(self._line(h, p) for h, p in self.owners.items()))
        except OSError as exc:
            log.error("host id bindings %s: cannot rewrite it: %s", self.path, exc)
