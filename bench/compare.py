"""What `swarm bench` compares Swarm with, all measured in the same invocation.

* `baseline`: the in-process asyncio system Swarm replaces (`swarm.bench.baseline`), W1-W4 and
  the seed's table, in a child process per round.
* `peers`: Ray and Dask where installed (`swarm.bench.peers`), W1-W4; skipped, with a line
  saying so, where not.
* `calibration`: the machine's effective cores at the start and at the end of the run.

Every ratio is computed here from figures of this run, never from a figure written down
elsewhere: throughputs are Swarm ÷ other, W3's latency other ÷ Swarm, so above 1 Swarm is ahead.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from swarm.bench import baseline as baseline_mod
from swarm.bench import calibration, peers, workloads

# The figures every comparison reports (JSON `vs_baseline`, `vs_peers`).
KEYS = ("w1_tasks_per_s", "w2_efficiency", "w3_p50_us", "w4_tasks_per_s")
LOWER_IS_BETTER = frozenset({"w3_p50_us", "w3_p90_us", "w3_p99_us", "w3_max_us"})

Say = Callable[[str], None]


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over rounds of one system's figures (the seed table row by row)."""
    out: dict[str, Any] = {"rounds": len(runs)}
    for key in sorted({k for run in runs for k in run}):
        values = [run[key] for run in runs if isinstance(run.get(key), int | float)]
        if values:
            out[key] = statistics.median(values)
    tables = [run["seed_table"] for run in runs if run.get("seed_table")]
    if tables:
        out["seed_table"] = workloads.median_rows(tables)
    return out


def ratio(key: str, swarm: Any, other: Any) -> float | None:
    """Swarm's advantage: Swarm ÷ other, or other ÷ Swarm for a latency; None if either is
    missing or zero."""
    if not isinstance(swarm, int | float) or not isinstance(other, int | float):
        return None
    if swarm <= 0 or other <= 0:
        return None
    return float(other / swarm if key in LOWER_IS_BETTER else swarm / other)


def calibrate(say: Say, when: str) -> dict[str, Any]:
    cal = calibration.measure()
    say(f"== calibration ({when}): {calibration.describe(cal)}")
    return cal


def run_baseline(
    quick: bool, repeat: int, agents: int, settle: Callable[[], None], say: Say
) -> dict[str, Any]:
    say(f"== baseline: one process, {agents} agents (the seed's design): W1-W4, the seed's table")
    runs = []
    for _ in range(repeat):
        settle()
        runs.append(baseline_mod.run_child(quick, agents))
        say("  " + ", ".join(f"{k} = {runs[-1][k]:,.2f}" for k in KEYS))
    return summarize(runs)


def run_peers(
    quick: bool, repeat: int, agents: int, settle: Callable[[], None], say: Say
) -> dict[str, Any]:
    """{"peers": {system: figures}, "peers_skipped": {system: why}}."""
    skipped = peers.missing()
    measured: dict[str, Any] = {}
    for system in peers.SYSTEMS:
        if system in skipped:
            say(f"== peers: {system} skipped: {skipped[system]}")
            continue
        say(f"== peers: {system}, W1-W4 (alone: Swarm and the baseline have stopped)")
        runs = []
        try:
            for _ in range(repeat):
                settle()
                runs.append(peers.run_child(system, quick, agents))
                say("  " + ", ".join(f"{k} = {runs[-1][k]:,.2f}" for k in KEYS))
        except (RuntimeError, OSError) as exc:  # a peer that breaks must not lose Swarm's run
            skipped[system] = f"failed: {exc}"
            say(f"  {system} failed, left out: {exc}")
            continue
        measured[system] = summarize(runs)
    return {"peers": measured, "peers_skipped": skipped}


def ratios(figures: dict[str, Any]) -> dict[str, Any]:
    """`vs_baseline` and `vs_peers` from the figures of this run; the seed table's rows gain
    the baseline's tasks/s and the ratio to it."""
    out: dict[str, Any] = {}
    base = figures.get("baseline")
    if base:
        out["vs_baseline"] = {
            k: ratio(k, figures.get(k), base.get(k)) for k in KEYS if figures.get(k) is not None
        }
        by_row = {(r["agents"], r["tasks"]): r for r in base.get("seed_table") or []}
        for row in figures.get("seed_table") or []:
            other = by_row.get((row["agents"], row["tasks"]))
            if other is not None:
                row["baseline_tasks_per_s"] = other["tasks_per_s"]
                row["vs_baseline"] = ratio("tasks_per_s", row["tasks_per_s"], other["tasks_per_s"])
    measured = figures.get("peers") or {}
    if measured:
        out["vs_peers"] = {
            system: {k: ratio(k, figures.get(k), theirs.get(k)) for k in KEYS if k in figures}
            for system, theirs in measured.items()
        }
    return out
