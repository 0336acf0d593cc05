"""Choosing, opening and recovering the journal at start-up, and its command-line flags.

    python -m swarm.server --state-dir DIR                 # journal in DIR/journal.sqlite
    python -m swarm.server --state-dir DIR --fresh         # start afresh (the old file kept aside)
    python -m swarm.server --journal memory                # nothing kept (as before the journal)

Recovery rules (core_journal.py applies them): every unfinished task comes back (pending,
queued; an assigned or running one requeued with an attempt number past any the previous
incarnation sent, so a late result of that one is stale); finished tasks within retention are
valid dependencies and recognised resubmissions; a result a client had not acknowledged is
sent to it again when it reconnects, one it had acknowledged is not. A journal that cannot be
read is an error naming the file, never an empty start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

from swarm.common.credentials import state_dir
from swarm.server.config import OrchestratorConfig
from swarm.server.journal_base import JournalBackend, JournalError
from swarm.server.journal_sqlite import SYNC_MODES, SqliteJournal
from swarm.server.journal_writer import JournalWriter
from swarm.server.orchestrator import Orchestrator

log = logging.getLogger("swarm.server.journal")

JOURNAL_FILE = "journal.sqlite"
MODES = ("auto", "sqlite", "memory", "off")


@dataclass(frozen=True, slots=True)
class JournalChoice:
    path: Path | None  # None: in memory only, nothing survives the process
    sync: str = "normal"
    fresh: bool = False


def add_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("journal (accepted tasks survive a crash)")
    g.add_argument(
        "--journal",
        choices=MODES,
        default="auto",
        help="sqlite: DIR/journal.sqlite in the state directory; memory (or off): keep nothing; "
        "auto (default): sqlite when there is a state directory (--state-dir, $SWARM_HOME)",
    )
    g.add_argument(
        "--journal-sync",
        choices=SYNC_MODES,
        default="normal",
        help="normal: a commit survives the process's crash, not a power loss; full: an fsync "
        "per commit, survives both (slower; docs/durability.md)",
    )
    g.add_argument(
        "--fresh",
        action="store_true",
        help="start with an empty journal; an existing one is renamed aside, not read",
    )


def from_args(args: argparse.Namespace) -> JournalChoice:
    d = state_dir(getattr(args, "state_dir", None))
    mode = args.journal
    if mode in ("memory", "off") or (mode == "auto" and d is None):
        return JournalChoice(None)
    if d is None:
        raise ValueError("--journal sqlite needs a state directory: --state-dir DIR")
    return JournalChoice(d / JOURNAL_FILE, args.journal_sync, args.fresh)


def open_backend(choice: JournalChoice) -> SqliteJournal | None:
    """The backend for `choice`, its file set aside first when asked to start afresh."""
    if choice.path is None:
        return None
    path = choice.path
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        if choice.fresh and path.exists():
            aside = path.with_name(f"{path.name}.{int(time.time())}.old")
            for suffix in ("", "-wal", "-shm"):
                src = Path(f"{path}{suffix}")
                if src.exists():
                    src.replace(f"{aside}{suffix}")
            log.warning("--fresh: the previous journal is kept aside as %s", aside)
    except OSError as exc:
        raise JournalError(f"the journal {path} cannot be prepared: {exc}") from None
    return SqliteJournal(path, choice.sync)


def attach(
    orch: Orchestrator, backend: JournalBackend, config: OrchestratorConfig
) -> JournalWriter:
    """Load the journal, rebuild the core from it, and start its writer: before serving."""
    started = time.monotonic()
    recovered = backend.load()
    # Inline commits only where a commit is a write to the page cache, never an fsync.
    inline = isinstance(backend, SqliteJournal) and backend.sync == "normal"
    horizon_s = config.result_ttl_s + config.client_ttl_s
    orch.use_journal(JournalWriter(backend, prune_horizon_s=horizon_s, inline=inline))
    assert orch.journal is not None
    orch.journal.start(asyncio.get_running_loop())
    figures = orch.core.restore(recovered, orch.now(), time.time())
    orch.flush()  # what recovery itself recorded (dependents failed, retention) is journaled
    log.info(
        "journal %s (incarnation %d): %d unfinished tasks restored, %d finished kept, "
        "%d results owed to %d clients, in %.2f s",
        recovered.path,
        recovered.incarnation,
        figures.unfinished,
        figures.finished,
        figures.owed,
        figures.clients,
        time.monotonic() - started,
    )
    return orch.journal
