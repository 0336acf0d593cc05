"""`swarm submit | status | cancel` against a real cluster: output, messages and exit codes."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from swarm.cli.main import main
from swarm.deploy.inproc import InProcessSwarm

from tests.helpers import run_cli


@pytest.fixture(scope="module")
def cluster() -> Iterator[InProcessSwarm]:
    with InProcessSwarm(hosts=2, agents_per_host=20, modules=["tests.client_handlers"]) as c:
        yield c


def swarm(
    capsys: pytest.CaptureFixture[str], cluster: InProcessSwarm, *argv: str
) -> tuple[int, str, str]:
    return run_cli(capsys, cluster.address, *argv)


def test_submit_prints_the_task_id(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = swarm(capsys, cluster, "submit", "echo", "hello")
    assert code == 0 and err == ""
    assert out.strip() and "\n" not in out.strip()


def test_submit_wait_prints_the_output(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    assert swarm(capsys, cluster, "submit", "echo", "hello", "--wait")[:2] == (0, "hello\n")
    assert swarm(capsys, cluster, "submit", "double", "21", "--json", "--wait")[:2] == (0, "42\n")
    code, out, _ = swarm(capsys, cluster, "submit", "echo", '{"a": [1]}', "--json", "--wait")
    assert code == 0 and json.loads(out) == {"a": [1]}


def test_a_payload_that_is_not_json_is_a_usage_error(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = swarm(capsys, cluster, "submit", "echo", "{bad", "--json")
    assert code == 2 and out == ""
    assert "PAYLOAD is not valid JSON" in err and "drop --json" in err


def test_a_failed_task_exits_1_with_the_remote_error(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = swarm(capsys, cluster, "submit", "fail", "disk on fire", "--wait")
    assert code == 1 and out == ""
    assert "RuntimeError: disk on fire" in err and "Traceback" in err


def test_waiting_past_the_timeout_exits_4_and_cancel_stops_the_task(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = swarm(capsys, cluster, "submit", "sleep", "60000", "--wait", "--timeout", "0.1")
    assert code == 4 and "had not finished after 0.1 s" in err and "swarm cancel" in err
    code, task_id, _ = swarm(capsys, cluster, "submit", "sleep", "60000")
    assert code == 0
    code, out, err = swarm(capsys, cluster, "cancel", task_id.strip())
    assert (code, out, err) == (0, f"{task_id.strip()}\tCANCELLED\n", "")


def test_cancel_of_an_unknown_task_exits_1(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = swarm(capsys, cluster, "cancel", "no-such-task")
    assert code == 1 and out == ""
    assert "unknown task 'no-such-task'" in err


def test_cancel_of_a_known_and_an_unknown_task_cancels_the_known_one_and_exits_5(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, task_id, _ = swarm(capsys, cluster, "submit", "sleep", "60000")
    good = task_id.strip()
    code, out, err = swarm(capsys, cluster, "cancel", good, "no-such-task")
    assert (code, out) == (5, f"{good}\tCANCELLED\n")
    assert "unknown task 'no-such-task'" in err and good not in err
    code, out, _ = swarm(capsys, cluster, "status", "--json")
    assert json.loads(out)["tasks"]["CANCELLED"] >= 1


def test_submit_from_a_file_waits_for_all_and_summarises(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "payloads.txt"
    path.write_text("1\n2\n\n3\n")
    code, out, err = swarm(capsys, cluster, "submit", "double", "--from", str(path), "--json")
    assert code == 0 and out == ""
    assert "3 tasks: 3 succeeded, 0 failed" in err
    code, out, err = swarm(
        capsys, cluster, "submit", "double", "--from", str(path), "--json", "--wait"
    )
    assert code == 0 and out.split() == ["2", "4", "6"]


def test_submit_from_stdin_reports_failures(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("a\nb\n"))
    code, _, err = swarm(capsys, cluster, "submit", "fail", "--from", "-")
    assert code == 1
    assert "2 tasks: 0 succeeded, 2 failed" in err and "RuntimeError: a" in err


def test_bad_input_files_change_nothing(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1\n{oops\n3\n")
    code, out, err = swarm(capsys, cluster, "submit", "double", "--from", str(path), "--json")
    assert code == 2 and out == "" and f"{path}:2 is not valid JSON" in err
    code, _, err = swarm(capsys, cluster, "submit", "echo", "--from", str(tmp_path / "missing"))
    assert code == 2 and "cannot read" in err
    code, _, err = swarm(capsys, cluster, "submit", "echo", "x", "--from", str(path))
    assert code == 2 and "either PAYLOAD or --from" in err


def test_status_shows_a_table_of_hosts(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = swarm(capsys, cluster, "status")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].startswith(f"orchestrator {cluster.address}")
    assert lines[1].split() == [
        "HOST", "PID", "STATE", "AGENTS", "RUNNING", "FREE", "LOOP", "LAG", "DONE"
    ]  # fmt: skip
    rows = {line.split()[0]: line.split() for line in lines[2:4]}
    assert set(rows) == {"h0", "h1"}
    assert all(row[2] == "ACTIVE" and row[3] == "20" for row in rows.values())
    code, out, _ = swarm(capsys, cluster, "status", "--json")
    assert code == 0 and sorted(h["host_id"] for h in json.loads(out)["hosts"]) == ["h0", "h1"]


def test_the_address_comes_from_the_environment(
    cluster: InProcessSwarm, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWARM_ADDRESS", cluster.address)
    assert main(["status"]) == 0
    assert "h0" in capsys.readouterr().out


def test_an_unreachable_address_exits_3_with_advice(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["status"], ["submit", "echo", "x"], ["cancel", "t1"]):
        code = main([*argv, "--connect", "127.0.0.1:1", "--connect-timeout", "0.2"])
        err = capsys.readouterr().err
        assert code == 3
        assert "cannot reach the Swarm orchestrator at 127.0.0.1:1" in err
        assert "swarm up" in err and "SWARM_ADDRESS" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["submit"])
    assert info.value.code == 2
    assert "kind" in capsys.readouterr().err
