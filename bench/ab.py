"""A/B in one run: two arms alternated round by round, medians and the W1/W3 ratios between them.

Used by the cost measurements of what a deployment turns on (journal_cost.py, security_cost.py):
each arm is one in-process swarm measured with W1 and W3; the order alternates every round so
that neither arm always runs on a warmer (or busier) machine.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence

Figures = dict[str, float]


def alternate(
    rounds: int, control: str, treated: str, arm: Callable[[str, int], Figures]
) -> dict[str, list[Figures]]:
    """`arm(name, round)` for both arms, `rounds` times, the first arm alternating."""
    runs: dict[str, list[Figures]] = {control: [], treated: []}
    for r in range(rounds):
        for name in (control, treated) if r % 2 == 0 else (treated, control):
            runs[name].append(arm(name, r))
    return runs


def summary(
    runs: dict[str, list[Figures]],
    control: str,
    treated: str,
    *,
    ratios: Sequence[str] = (),
) -> dict[str, object]:
    """Medians per arm, treated ÷ control for W1 throughput (`w1_ratio`), for W3 p50 latency
    (`w3_p50_ratio`) and for each figure named in `ratios` (as `<name>_ratio`)."""
    med = {
        name: {k: statistics.median(run[k] for run in rs) for k in rs[0]}
        for name, rs in runs.items()
    }
    return {
        "median": med,
        "w1_ratio": med[treated]["w1_tasks_per_s"] / med[control]["w1_tasks_per_s"],
        "w3_p50_ratio": med[treated]["w3_p50_us"] / med[control]["w3_p50_us"],
        **{f"{k}_ratio": med[treated][k] / med[control][k] for k in ratios},
    }


def report(
    runs: dict[str, list[Figures]],
    control: str,
    treated: str,
    *,
    ratios: Sequence[str] = (),
    **extra: object,
) -> str:
    """The JSON the cost modules print: `extra`, the `summary` and every run."""
    return json.dumps(
        {**extra, **summary(runs, control, treated, ratios=ratios), "runs": runs}, indent=2
    )
