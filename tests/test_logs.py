"""`--log-format json` (swarm.common.logs): the formatter, and a real swarm logging in JSON.

The end-to-end test runs `swarm up --log-format json` (an orchestrator and one host, real
processes), SIGKILLs the host and reads the orchestrator's lines: every line is a JSON object,
and the loss is told exactly once, with its reason and timings as fields.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from swarm.common import logs

from tests import test_deploy
from tests.helpers import eventually

tag = test_deploy.tag  # the fixture: every process a test starts is gone at its end


def test_json_lines_carry_time_level_logger_message_and_the_extra_fields() -> None:
    out = io.StringIO()
    logs.setup("INFO", "json", stream=out)
    try:
        log = logging.getLogger("swarm.test")
        log.info("host %s lost", "h0", extra={"event": "host_lost", "host_id": "h0", "pid": 7})
        log.debug("not at INFO")
        try:
            raise ValueError("boom")
        except ValueError:
            log.exception("failed", extra={"path": Path("/x")})
    finally:
        logs.setup("WARNING", "text")
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "host h0 lost"
    assert (first["level"], first["logger"], first["host_id"], first["pid"]) == (
        "INFO",
        "swarm.test",
        "h0",
        7,
    )
    assert first["time"].endswith("+00:00") and "T" in first["time"]
    assert second["path"] == "/x" and "ValueError: boom" in second["exc"]


def test_text_stays_the_line_tools_parse() -> None:
    out = io.StringIO()
    logs.setup("INFO", "text", stream=out)
    try:
        logging.getLogger("swarm.test").info("plain", extra={"host_id": "h0"})
    finally:
        logs.setup("WARNING", "text")
    assert out.getvalue().rstrip().endswith(" swarm.test INFO plain")


def _records(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_swarm_up_json_logs_reach_the_children_and_a_lost_host_is_one_event(
    tmp_path: Path, tag: str
) -> None:
    out, err = tmp_path / "up.out", tmp_path / "up.err"
    args = ["up", "--port", "0", "--hosts", "1", "--agents-per-host", "4"]
    args += ["--log-format", "json", "--log-level", "INFO", "--no-metrics"]
    with open(out, "wb") as stdout, open(err, "wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "swarm.cli", *args],
            stdout=stdout,
            stderr=stderr,
            env={**os.environ, test_deploy.TAG: tag},
            cwd=tmp_path,  # its journal (./.swarm) stays in the test's directory
            start_new_session=True,
        )
    try:
        ready = eventually(
            lambda: test_deploy.READY.search(out.read_text()), 60, 0.02, what="ready"
        )
        host_pid = int(ready.group(3).split()[0])
        os.kill(host_pid, signal.SIGKILL)

        def lost() -> list[dict[str, Any]] | None:
            recs = _records(err.read_text(errors="replace"))
            found = [r for r in recs if r.get("event") == "host_lost" and r["pid"] == host_pid]
            return found or None

        (event,) = eventually(lost, 30, 0.05, what="a host_lost line")
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    lines = [line for line in err.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line of every process is JSON
    assert len([r for r in records if r.get("event") == "host_lost"]) == 1
    assert event["logger"] == "swarm.server.core" and event["level"] == "WARNING"
    assert event["reason"] in ("its stream ended without a drain", "its stream broke")
    assert event["requeued"] == 0 and event["quarantined"] == 0
    assert isinstance(event["silent_s"], float) and event["silent_s"] >= 0
    assert isinstance(event["lease_s"], float) and event["host_id"]
    joined = [r for r in records if r.get("event") == "host_joined"]
    assert {r["pid"] for r in joined} >= {host_pid}  # the restarted host joins again
    # The host's own lines carry its id too, and the same one the orchestrator names.
    connected = [r for r in records if r.get("event") == "host_connected"]
    assert connected and all(r["logger"] == "swarm.agent_host" for r in connected)
    assert {r["host_id"] for r in connected} == {r["host_id"] for r in joined}
    assert all(r["agents"] == 4 and r["session"] >= 1 for r in connected)
