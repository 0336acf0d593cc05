"""What `swarm bench` hands back: medians of samples, the machine, a table, a PNG.

The table and the plot show Swarm beside what was measured in the same invocation (the
in-process baseline, peers where installed, the calibration); the targets are goals, not
another system's figures.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from swarm.bench import calibration
from swarm.bench.compare import KEYS
from swarm.server import compiled as server_compiled


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    goal: float | None  # None: reported only
    higher_is_better: bool = True
    unit: str = ""


TARGETS: dict[str, Target] = {
    "w1_tasks_per_s": Target("W1 no-op tasks/s", 100_000),
    "w2_tasks_per_s": Target("W2 I/O tasks/s", None),
    "w2_efficiency": Target("W2 efficiency", 0.70),
    "w3_p50_us": Target("W3 p50 µs", 800, False),
    "w3_p99_us": Target("W3 p99 µs", 2000, False),
    "w4_tasks_per_s": Target("W4 DAG tasks/s", 50_000),
    "w5_lost": Target("W5 lost", 0, False),
    "w5_duplicates": Target("W5 delivered twice", 0, False),
    "w5_slowdown": Target("W5 slowdown (kill)", 1.05, False),
    "w5_detect_ms": Target("W5 detection ms (kill)", None, False),
    "w5_stop_detect_ms": Target("W5 detection ms (stop)", None, False),
    "w6_bytes_per_idle_agent": Target("W6 B/idle agent", 200, False),
    "w6_bytes_per_inflight_task": Target("W6 B/in-flight task", 1500, False),
    "w6_agents_spawned_per_s": Target("W6 agents spawned/s", 1_000_000),
    "w7_scaling_efficiency": Target("W7 scaling efficiency", 0.85),
    "w8_lost": Target("W8 lost (orch. SIGKILL)", 0, False),
    "w8_duplicates": Target("W8 delivered twice", 0, False),
    "w8_first_result_s": Target("W8 restart→1st result s", None, False),
    "w8_last_result_s": Target("W8 restart→last result s", None, False),
    # W9: on ÷ off, same run; the goals are those of the pair's own module.
    "w9_journal_w1_ratio": Target("W9 journal W1 ratio", 0.7),
    "w9_journal_w3_p50_ratio": Target("W9 journal W3 p50 ratio", 1.3, False),
    "w9_tls_w1_ratio": Target("W9 TLS+tokens W1 ratio", 0.9),
    "w9_tls_w3_p50_ratio": Target("W9 TLS+tokens W3 p50 ratio", 1.15, False),
    "w9_metrics_w1_ratio": Target("W9 metrics W1 ratio", 0.97),
    "w9_metrics_w3_p50_ratio": Target("W9 metrics W3 p50 ratio", None, False),
}


def machine() -> dict[str, Any]:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for dist in ("swarm", "grpcio", "protobuf", "uvloop", "psutil"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    return {
        "cores": os.cpu_count(),
        "cpu_model": model,
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        # The orchestrator's core as installed (setup.py): "mypyc" (compiled) or "python".
        "core": "mypyc" if server_compiled() else "python",
    }


def medians(samples: dict[str, list[float | None]]) -> dict[str, float | None]:
    """The median of each figure over repeats (None where no run produced it)."""
    out: dict[str, float | None] = {}
    for key, values in samples.items():
        present = [v for v in values if v is not None]
        out[key] = statistics.median(present) if present else None
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value >= 1000:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    return str(value)


def _verdict(key: str, value: float | None) -> str:
    target = TARGETS.get(key)
    if target is None or target.goal is None or value is None:
        return ""
    ok = value >= target.goal if target.higher_is_better else value <= target.goal
    return "ok" if ok else "MISSED"


def _times(r: float | None) -> str:
    if r is None:
        return "—"
    return f"{r:,.0f}x" if r >= 10 else f"{r:.2g}x"


def table(figures: dict[str, Any]) -> str:
    """The human view: each figure, its target, and beside it the baseline, the ratio to it and
    any peer, all measured in this run."""
    base = figures.get("baseline") or {}
    vs = figures.get("vs_baseline") or {}
    peers = figures.get("peers") or {}
    vs_peers = figures.get("vs_peers") or {}
    lines = [
        f"{'figure':<28}{'Swarm':>12}{'baseline':>12}{'÷ base':>9}{'target':>12}{'':>8}"
        + ("  peers (this run)" if peers else "")
    ]
    for key, target in TARGETS.items():
        value = figures.get(key)
        if value is None and key not in figures:
            continue
        goal = (
            ""
            if target.goal is None
            else ("≥ " if target.higher_is_better else "≤ ") + _fmt(float(target.goal))
        )
        theirs = [
            f"{name} {_fmt(fig.get(key))} ({_times(vs_peers.get(name, {}).get(key))})"
            for name, fig in peers.items()
            if key in KEYS
        ]
        ratio = _times(vs[key]) if key in vs else ""
        lines.append(
            f"{target.label:<28}{_fmt(value):>12}{_fmt(base[key]) if key in base else '':>12}"
            f"{ratio:>9}{goal:>12}{_verdict(key, value):>8}  " + ", ".join(theirs)
        )
    if base and not any(k in figures for k in KEYS):
        lines.append("baseline alone: " + ", ".join(f"{k} {_fmt(base.get(k))}" for k in KEYS))
    skipped = figures.get("peers_skipped") or {}
    for name, why in skipped.items():
        lines.append(f"peer {name}: not measured, {why}")
    for key in sorted(figures):
        if key.startswith(("ceiling_", "w1_raw", "w3_raw", "w4_raw", "w2_raw")):
            lines.append(f"{key:<28}{_fmt(figures[key]):>12}")
    budget = figures.get("budget_us_per_task") or {}
    if budget:
        lines.append("")
        lines.append("CPU µs per task: client, orchestrator, hosts, kernel irq; others; wall")
        for name, procs in budget.items():
            hosts = sum(v for k, v in procs.items() if k.startswith("host"))
            lines.append(
                f"  {name:<8} client {procs.get('client', 0):6.1f}  orch "
                f"{procs.get('orchestrator', 0):6.1f}  hosts {hosts:6.1f}  irq "
                f"{procs.get('irq', 0):5.1f}  others {procs.get('other', 0):6.1f}  wall "
                f"{procs.get('wall', 0):7.1f}"
            )
    rows = figures.get("seed_table") or []
    if rows:
        lines.append("")
        lines.append(f"{'seed table: agents/tasks':<28}{'Swarm':>12}{'baseline':>12}{'÷ base':>9}")
        for row in rows:
            lines.append(
                f"{row['agents']:>14} / {row['tasks']:<11}{_fmt(row['tasks_per_s']):>12}"
                f"{_fmt(row.get('baseline_tasks_per_s')):>12}{_times(row.get('vs_baseline')):>9}"
            )
    lines.append("")
    for when, cal in (figures.get("calibration") or {}).items():
        lines.append(f"calibration ({when}): {calibration.describe(cal)}")
    info = figures.get("machine") or {}
    if info:
        lines.append(
            f"machine: {info.get('cpu_model')}, {info.get('cores')} cores, "
            f"Python {info.get('python')}, core {info.get('core', 'python')}"
        )
    return "\n".join(lines)


def plot(figures: dict[str, Any], path: str) -> None:
    """The seed's table, Swarm beside the baseline of the same run, and W7's scaling against
    the ideal, in one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    rows = figures.get("seed_table") or []
    if rows:
        labels = [f"{r['agents']}/{r['tasks']}" for r in rows]
        x = range(len(rows))
        base = [r.get("baseline_tasks_per_s") or 0 for r in rows]
        left.bar([i - 0.2 for i in x], base, 0.4, label="in-process baseline (same run)")
        left.bar([i + 0.2 for i in x], [r["tasks_per_s"] for r in rows], 0.4, label="Swarm")
        left.set_xticks(list(x), labels)
        left.set_xlabel("agents / tasks (28 ms each)")
        left.set_ylabel("tasks/s")
        left.set_title("The seed's table")
        left.legend()
    sweep = figures.get("w7_sweep") or {}
    if not sweep and figures.get("w7_tasks_per_s_1host"):
        sweep = {"1": figures["w7_tasks_per_s_1host"]}
        if figures.get("w7_hosts"):
            sweep[str(figures["w7_hosts"])] = figures.get("w7_tasks_per_s")
    if sweep:
        hosts = sorted(int(h) for h in sweep)
        right.plot(hosts, [sweep[str(h)] for h in hosts], "o-", label="Swarm")
        right.plot(
            hosts, [1000 * h for h in hosts], "--", color="grey", label="ideal (1 core each)"
        )
        right.set_xticks(hosts)
        right.set_ylim(bottom=0)
        right.set_xlabel("agent-host processes")
        right.set_ylabel("tasks/s (1 ms of CPU each)")
        right.set_title("W7: CPU-bound scaling")
        right.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
