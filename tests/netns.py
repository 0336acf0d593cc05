"""A network namespace joined to the root namespace by a veth pair, to cut a host off for real.

    reason = netns.unavailable()          # None, or why namespaces cannot be used here
    with netns.NetNs() as ns:
        server_bind = ns.root_addr        # the root end's address: bind the orchestrator there
        proc = Popen(ns.exec_args([sys.executable, "-m", "swarm.agent_host", ...]))
        ns.link_down()                    # a silent partition: packets are dropped, no RST
        ns.link_up()

Each pair gets a /30 from 10.213.0.0/16, chosen from this process's id and checked against the
addresses in use, so that two test runs side by side do not collide. Names carry the pid, so a
namespace left behind by a test process that was killed is recognised and removed by the next
one. Needs root and `ip` from iproute2.
"""

from __future__ import annotations

import ipaddress
import itertools
import os
import re
import shutil
import subprocess
from collections.abc import Sequence

PREFIX = "swchaos"  # namespace names: swchaos-<pid>-<n>; veth names: sc<pid>x<n>a / ...b
_SUPERNET = ipaddress.ip_network("10.213.0.0/16")
_counter = itertools.count()


def _ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    cmd = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


def unavailable() -> str | None:
    """Why network namespaces cannot be used here, or None when they can."""
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "network namespaces need Linux"
    if os.geteuid() != 0:
        return "network namespaces need root (euid is not 0)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed"
    try:
        _ip("netns", "list")
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
        return f"`ip netns` does not work here: {exc}"
    return None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale() -> list[str]:
    """Delete namespaces left by test processes that no longer exist (their veths go with them)."""
    removed = []
    for line in _ip("netns", "list").splitlines():
        m = re.match(rf"({PREFIX}-(\d+)-\d+)\b", line.strip())
        if m and not _pid_alive(int(m.group(2))):
            _ip("netns", "del", m.group(1), check=False)
            removed.append(m.group(1))
    return removed


def _used_networks() -> list[ipaddress.IPv4Network]:
    nets = []
    for m in re.finditer(r"inet (\d+\.\d+\.\d+\.\d+/\d+)", _ip("-4", "addr")):
        nets.append(ipaddress.ip_interface(m.group(1)).network)
    return nets


def _pick_subnet() -> ipaddress.IPv4Network:
    subnets = list(_SUPERNET.subnets(new_prefix=30))
    used = _used_networks()
    start = (os.getpid() * 7 + next(_counter)) % len(subnets)
    for i in range(len(subnets)):
        net = subnets[(start + i) % len(subnets)]
        if not any(net.overlaps(u) for u in used):
            return net
    raise RuntimeError(f"no free /30 left in {_SUPERNET}")


class NetNs:
    """One namespace and one veth pair: `root_dev` (root side, `root_addr`) and `ns_dev`."""

    def __init__(self) -> None:
        n = next(_counter)
        pid = os.getpid()
        self.name = f"{PREFIX}-{pid}-{n}"
        tag = f"sc{pid}x{n}"[:13]  # interface names are at most 15 characters
        self.root_dev = f"{tag}a"
        self.ns_dev = f"{tag}b"
        self.net = _pick_subnet()
        root, inside = list(self.net.hosts())
        self.root_addr = str(root)
        self.ns_addr = str(inside)
        self._created = False

    def __enter__(self) -> NetNs:
        try:
            self.create()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def create(self) -> None:
        remove_stale()
        plen = self.net.prefixlen
        self._created = True
        _ip("netns", "add", self.name)
        _ip("link", "add", self.root_dev, "type", "veth", "peer", "name", self.ns_dev)
        _ip("link", "set", self.ns_dev, "netns", self.name)
        _ip("addr", "add", f"{self.root_addr}/{plen}", "dev", self.root_dev)
        _ip("link", "set", self.root_dev, "up")
        _ip("addr", "add", f"{self.ns_addr}/{plen}", "dev", self.ns_dev, ns=self.name)
        _ip("link", "set", self.ns_dev, "up", ns=self.name)
        _ip("link", "set", "lo", "up", ns=self.name)

    def exec_args(self, args: Sequence[str]) -> list[str]:
        """A command line that runs `args` inside the namespace (`ip netns exec` execs in place,
        so the process id is the command's own and signals reach it directly)."""
        return ["ip", "netns", "exec", self.name, *args]

    def link_down(self) -> None:
        """Cut the cable at the root end: the namespace side keeps its address and routes, and
        what it sends is dropped silently, as in a real partition (no reset reaches anyone)."""
        _ip("link", "set", self.root_dev, "down")

    def link_up(self) -> None:
        _ip("link", "set", self.root_dev, "up")

    def close(self) -> None:
        """Remove the namespace and the pair; safe to call twice, and after a failed create."""
        if not self._created:
            return
        self._created = False
        # Deleting one end of a veth pair deletes both, even while a process is still inside
        # the namespace (which would keep the namespace itself alive after `netns del`).
        _ip("link", "del", self.root_dev, check=False)
        _ip("netns", "del", self.name, check=False)
