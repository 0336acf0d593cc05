"""W9: what a real deployment turns on, each pair in the same run, as ratios (docs/workloads.md).

The three pairs are the standalone A/B modules' own arms, alternated round by round
(bench/ab.py), unchanged:

* journal: SQLite journal against in memory, as deployed (journal_cost.arm_procs: `swarm up`'s
  supervisor, orchestrator and 2 hosts x 500 agents as processes of their own);
* tls: TLS and tokens against plain, as deployed (security_cost.arm with `processes=True`);
* metrics: /metrics and /api/state scraped every second against no HTTP port, in process as
  metrics_cost.py does it.

Each ratio is treated ÷ control: W1 throughput (`w9_<pair>_w1_ratio`, below 1 is a cost) and
W3 p50 latency (`w9_<pair>_w3_p50_ratio`, above 1 is a cost).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from swarm.bench import ab, journal_cost, metrics_cost, security_cost
from swarm.common import pki

PAIRS = ("journal", "tls", "metrics")


def measure(
    w1: int, w3: int, rounds: int, settle: Callable[[], None] = lambda: None
) -> dict[str, object]:
    """The three pairs, `rounds` rounds each; `settle` runs before every arm. Returns the
    `w9_*` ratios and, under `w9_median`, each pair's medians per arm."""
    out: dict[str, object] = {}
    medians: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "state"
        pki.init_state(home)

        def journal(name: str, r: int) -> ab.Figures:
            path = None
            if name == "journal":
                path = Path(tmp) / f"j{r}" / "journal.sqlite"
                path.parent.mkdir()
            return journal_cost.arm_procs(path, w1, w3, "normal")

        def tls(name: str, _r: int) -> ab.Figures:
            return security_cost.arm(home if name == "secure" else None, w1, w3, processes=True)

        def metrics(name: str, _r: int) -> ab.Figures:
            return metrics_cost.arm(name == "scraped", w1, w3)

        arms: dict[str, tuple[str, str, Callable[[str, int], ab.Figures]]] = {
            "journal": ("memory", "journal", journal),
            "tls": ("plain", "secure", tls),
            "metrics": ("plain", "scraped", metrics),
        }
        for pair in PAIRS:
            control, treated, arm = arms[pair]

            def settled(
                name: str, r: int, arm: Callable[[str, int], ab.Figures] = arm
            ) -> ab.Figures:
                settle()
                return arm(name, r)

            s = ab.summary(ab.alternate(rounds, control, treated, settled), control, treated)
            out[f"w9_{pair}_w1_ratio"] = s["w1_ratio"]
            out[f"w9_{pair}_w3_p50_ratio"] = s["w3_p50_ratio"]
            medians[pair] = s["median"]
    return {**out, "w9_median": medians}
