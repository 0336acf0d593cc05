"""`swarm bench`: the command. The harness it runs lives in `swarm.bench` (see `suite.py`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from swarm.bench import report, suite
from swarm.common.runtime import run


def _say(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_bench(args: argparse.Namespace) -> int:
    figures = run(suite.collect(args))
    print(report.table(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        _say(f"wrote {args.json}")
    plot = args.plot or (str(Path(args.json).with_suffix(".png")) if args.json else None)
    if plot:
        try:
            report.plot(figures, plot)
            _say(f"wrote {plot}")
        except ImportError:
            _say("no plot: matplotlib is not installed (pip install 'swarm[plot]')")
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench",
        help="run the benchmark workloads (W1-W8, the seed's table) beside an in-process baseline",
        description=suite.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="short sizes, for a smoke pass")
    p.add_argument("--json", metavar="FILE", help="write every figure as one JSON object")
    p.add_argument(
        "--plot", metavar="FILE", help="PNG of the seed table and W7 (default: next to --json)"
    )
    p.add_argument("--connect", metavar="ADDR", help="run W1-W4 against this swarm instead")
    p.add_argument("--repeat", type=int, default=1, metavar="N", help="runs per figure (median)")
    p.add_argument(
        "--only", default="", metavar="W,...", help=f"a subset of {','.join(suite.WORKLOADS)}"
    )
    p.add_argument(
        "--quiet-below",
        type=float,
        default=0.0,
        metavar="PCT",
        help="before each step, wait (up to 5 min) until the machine is at most PCT%% busy",
    )
    p.add_argument("--sweep", default="", metavar="N,...", help="W1/W7 with these host counts")
    p.set_defaults(run=run_bench)
