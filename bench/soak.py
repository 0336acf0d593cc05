"""Bounded disk: a million tasks through a journaled orchestrator, its files sampled over time.

    python -m swarm.bench.soak                         # 1,000,000 no-op tasks, default retention
    python -m swarm.bench.soak --tasks 200000 --json soak.json

A journaled swarm (`swarm up`'s supervisor, 2 hosts x 500 agents, the orchestrator's default
retention: `max_retained` 100,000 finished tasks, `result_ttl_s` 300) runs `echo` tasks fed by
one raw-protocol client that keeps `window` tasks unfinished and acknowledges every result, as
the SDK does. Every `sample_s` the journal's three files (`journal.sqlite`, `-wal`, `-shm`) are
measured. Disk use is bounded when the database stops growing once the retention window is
full (after `max_retained` tasks) and the WAL stays under SQLite's checkpoint size.

It prints one line per sample and the figures: the peak of each file, the database's size when
twice the retention window had gone through and at the end (`growth_after_2x_retained`: end
÷ that), tasks/s.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from swarm.bench.local import bench_swarm
from swarm.bench.raw import RawSession
from swarm.server.config import OrchestratorConfig
from swarm.server.journal_recovery import JOURNAL_FILE


@dataclass(slots=True)
class Sample:
    at_s: float
    done: int
    db_bytes: int
    wal_bytes: int
    shm_bytes: int


@dataclass(slots=True)
class Soak:
    tasks: int
    samples: list[Sample] = field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        retained = OrchestratorConfig().max_retained
        full = next((s for s in self.samples if s.done >= 2 * retained), self.samples[-1])
        last = self.samples[-1]
        return {
            "soak_tasks": self.tasks,
            "soak_tasks_per_s": last.done / last.at_s if last.at_s else None,
            "soak_db_peak_bytes": max(s.db_bytes for s in self.samples),
            "soak_wal_peak_bytes": max(s.wal_bytes for s in self.samples),
            "soak_shm_peak_bytes": max(s.shm_bytes for s in self.samples),
            "soak_db_bytes_at_2x_retained": full.db_bytes,
            "soak_db_bytes_at_end": last.db_bytes,
            "soak_growth_after_2x_retained": last.db_bytes / full.db_bytes
            if full.db_bytes
            else None,
        }


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _sample(state: Path, t0: float, done: int) -> Sample:
    db = state / JOURNAL_FILE
    return Sample(
        time.perf_counter() - t0,
        done,
        _size(db),
        _size(Path(f"{db}-wal")),
        _size(Path(f"{db}-shm")),
    )


async def soak(tasks: int, window: int = 20_000, sample_s: float = 1.0, say: Any = print) -> Soak:
    out = Soak(tasks)
    with tempfile.TemporaryDirectory(prefix="swarm-soak-") as tmp:
        state = Path(tmp)
        async with (
            bench_swarm(2, 500, state_dir=state) as swarm,
            RawSession(swarm.address, client_id="soak") as session,
        ):
            t0 = time.perf_counter()
            next_sample = t0
            sent = 0
            step = session.batch
            while len(session.results) < tasks:
                if sent < tasks and sent - len(session.results) < window:
                    n = min(step, tasks - sent)
                    ids = [f"s{i}" for i in range(sent, sent + n)]
                    await session.submit("echo", ids, [b"x"] * n)
                    sent += n
                else:
                    await session.wait_count(len(session.results) + step, sample_s)
                if time.perf_counter() >= next_sample:
                    s = _sample(state, t0, len(session.results))
                    out.samples.append(s)
                    say(
                        f"{s.at_s:7.1f} s  {s.done:>9,} done  db {s.db_bytes / 1e6:7.1f} MB  "
                        f"wal {s.wal_bytes / 1e6:6.1f} MB  shm {s.shm_bytes / 1e3:6.0f} kB"
                    )
                    next_sample = time.perf_counter() + sample_s
            out.samples.append(_sample(state, t0, len(session.results)))
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--tasks", type=int, default=1_000_000)
    p.add_argument("--window", type=int, default=20_000, help="unfinished tasks at most")
    p.add_argument("--sample-s", type=float, default=1.0)
    p.add_argument("--json", metavar="FILE", help="write the figures and every sample")
    args = p.parse_args()
    from swarm.common.runtime import run

    result = run(soak(args.tasks, args.window, args.sample_s))
    figures = result.figures()
    for key, value in figures.items():
        print(f"{key} = {value}")
    if args.json:
        body = {**figures, "samples": [asdict(s) for s in result.samples]}
        Path(args.json).write_text(json.dumps(body, indent=2) + "\n")


if __name__ == "__main__":
    main()
