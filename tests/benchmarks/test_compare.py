"""`swarm bench` writes the same-run comparisons: a real swarm (quick sizes), the in-process
baseline in its child process, and the calibration at the start and the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from swarm.bench.compare import KEYS

pytestmark = pytest.mark.bench


@pytest.mark.timeout(180)
def test_bench_json_has_baseline_ratios_and_calibration(tmp_path: Path) -> None:
    out = tmp_path / "b.json"
    only = "w1,w2,w3,w4,baseline"  # all four of the compared figures, no more
    cmd = [sys.executable, "-m", "swarm.cli", "bench", "--quick", "--only", only]
    done = subprocess.run(
        [*cmd, "--json", str(out)], capture_output=True, text=True, timeout=170, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(out.read_text())
    for key in KEYS:
        assert figures["baseline"][key] > 0, key
        assert figures["vs_baseline"][key] > 0, key
    assert len(figures["baseline"]["seed_table"]) == 4
    for when in ("start", "end"):
        cal = figures["calibration"][when]
        for key in ("alone_s", "pair_s", "pair_ratio", "cores_effective"):
            assert cal[key] > 0
    # The table shows the baseline beside Swarm, the calibration and the CPU model.
    assert "baseline" in done.stdout and "calibration (end)" in done.stdout
    assert "machine:" in done.stdout
