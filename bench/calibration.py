"""How many cores the machine gave this run: a fixed pure-Python loop, alone and two at once.

    python -m swarm.bench.calibration            # {"alone_s", "pair_s", "pair_ratio", ...}

The loop runs in child processes: once alone, then as two processes released together. On two
real cores the pair takes as long as one alone (`pair_ratio` ~1, `cores_effective` ~2); on a
VM whose two vCPUs give one core's worth, twice as long (~2 and ~1). A shared VM can change its
mind during a run, so `swarm bench` calibrates at the start and at the end, and a reader can
tell a slow figure from a machine that was slow at that moment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from typing import Any

from swarm.deploy.orphan import tied, tied_env

# ~0.4 s of CPython 3.11 on the 2-vCPU machines the figures come from; fixed, never tuned to
# the machine, so that `alone_s` itself compares machines.
LOOP = 4_000_000


def spin(n: int) -> int:
    """The fixed loop: integer arithmetic in the interpreter, no allocation worth counting."""
    x = 0
    for i in range(n):
        x = (x * 31 + i) & 0xFFFF
    return x


def _child(n: int) -> None:
    """Say ready, wait for the go (one line on stdin), spin, print the seconds it took."""
    print("ready", flush=True)
    sys.stdin.readline()
    t0 = time.perf_counter()
    spin(n)
    print(f"{time.perf_counter() - t0:.6f}", flush=True)


def _together(k: int, n: int) -> list[float]:
    """Start `k` children, release them at once (start-up is not timed), their loop times."""
    procs = [
        subprocess.Popen(
            tied("swarm.bench.calibration", "--child", str(n)),
            env=tied_env(os.environ),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(k)
    ]
    try:
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "ready":
                raise RuntimeError("a calibration child did not start")
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        times = []
        for p in procs:
            out, _ = p.communicate(timeout=120)
            times.append(float(out.strip()))
        return times
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


def measure(n: int = LOOP) -> dict[str, Any]:
    """The loop alone, then two at once; `pair_s` is the slower of the pair."""
    alone = _together(1, n)[0]
    pair = max(_together(2, n))
    ratio = pair / alone
    return {
        "alone_s": alone,
        "pair_s": pair,
        "pair_ratio": ratio,
        # Two loops' work in `pair` seconds against one loop's in `alone`.
        "cores_effective": 2 / ratio,
        "loop": n,
    }


def describe(cal: dict[str, Any]) -> str:
    return (
        f"loop alone {cal['alone_s']:.3f} s, two at once {cal['pair_s']:.3f} s "
        f"(x{cal['pair_ratio']:.2f}): {cal['cores_effective']:.2f} cores effective"
    )


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--child":
        _child(int(sys.argv[2]))
        return 0
    print(json.dumps(measure(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
