"""Shell completion: the script `swarm completion bash` prints, loaded into a real bash and asked
what completes, as a TAB would ask it, against the installed `swarm` entry point."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# One bash run for every case (each TAB runs `swarm` once): the completion function gets the
# COMP_* variables bash gives it on a TAB, and its COMPREPLY is printed, one section per case.
BASH_SCRIPT = r"""
set -u
source <(swarm completion bash)
tab() {
    COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; COMP_TYPE=9
    read -ra COMP_WORDS <<<"$COMP_LINE"
    [[ "$COMP_LINE" == *" " ]] && COMP_WORDS+=("")
    COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 ))
    COMPREPLY=()
    _python_argcomplete swarm "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
    echo "== $1"
    printf '%s\n' "${COMPREPLY[@]}"
}
complete -p swarm
"""
CASES = ("swarm su", "swarm ", "swarm wait --", "swarm up --max-", "swarm completion ")


def swarm_entry_point() -> str:
    """The console script pip installed beside this interpreter (as a user's shell finds it)."""
    found = shutil.which("swarm", path=str(Path(sys.executable).parent)) or shutil.which("swarm")
    assert found, "the swarm entry point is not installed: pip install -e ."
    return found


def bash_completions() -> tuple[str, dict[str, list[str]]]:
    bin_dir = str(Path(swarm_entry_point()).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    script = BASH_SCRIPT + "".join(f"tab {case!r}\n" for case in CASES)
    done = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", script],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    head, _, rest = done.stdout.partition("== ")
    sections: dict[str, list[str]] = {}
    for block in ("== " + rest).split("== ")[1:]:
        line, *words = block.splitlines()
        sections[line] = [w.strip() for w in words if w.strip()]
    return head, sections


@pytest.fixture(scope="module")
def completions() -> tuple[str, dict[str, list[str]]]:
    return bash_completions()


def test_the_bash_script_registers_for_swarm(completions: tuple[str, dict[str, list[str]]]) -> None:
    head, _ = completions
    assert head.strip().endswith(" swarm"), head  # `complete -p swarm`: registered


def test_a_prefix_completes_to_its_command(completions: tuple[str, dict[str, list[str]]]) -> None:
    _, got = completions
    assert got["swarm su"] == ["submit"]
    assert {"up", "host", "submit", "status", "get", "wait", "drain", "top", "completion"} <= set(
        got["swarm "]
    )


def test_a_commands_flags_complete(completions: tuple[str, dict[str, list[str]]]) -> None:
    _, got = completions
    assert {"--any", "--timeout", "--json", "--connect"} <= set(got["swarm wait --"])
    assert "--max-retries" in got["swarm up --max-"]  # the orchestrator's, passed through
    assert all(w.startswith("--max-") for w in got["swarm up --max-"])
    assert {"bash", "zsh", "fish"} <= set(got["swarm completion "])


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("zsh", "compdef _python_argcomplete swarm"), ("fish", "complete --command swarm")],
)
def test_zsh_and_fish_scripts(shell: str, marker: str) -> None:
    done = subprocess.run(
        [swarm_entry_point(), "completion", shell], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    if shutil.which(shell):  # syntax-checked where the shell is installed
        check = subprocess.run([shell, "-n"], input=done.stdout, capture_output=True, text=True)
        assert check.returncode == 0, check.stderr


def test_an_unknown_shell_is_a_usage_error() -> None:
    done = subprocess.run(
        [swarm_entry_point(), "completion", "csh"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "invalid choice" in done.stderr


@pytest.mark.parametrize(
    ("shell", "env", "sep", "candidate"),
    [
        ("zsh", {"IFS": "\013", "_ARGCOMPLETE_SUPPRESS_SPACE": "1"}, "\013", "--timeout:exit 4"),
        ("fish", {"_ARGCOMPLETE_IFS": "\n", "_ARGCOMPLETE_DFS": "\t"}, "\n", "--timeout\texit 4"),
    ],
)
def test_zsh_and_fish_ask_swarm_the_same_way(
    tmp_path: Path, shell: str, env: dict[str, str], sep: str, candidate: str
) -> None:
    """What the zsh and fish scripts run on a TAB (the variables they set), against the
    installed entry point; the answer to a file rather than fd 8 (ARGCOMPLETE_USE_TEMPFILES's
    way): candidates with their help text."""
    line, answer = "swarm wait --t", tmp_path / "answer"
    done = subprocess.run(
        [swarm_entry_point()],
        env={**os.environ, **env, "_ARGCOMPLETE": "1", "_ARGCOMPLETE_SHELL": shell,
             "COMP_LINE": line, "COMP_POINT": str(len(line)),
             "_ARGCOMPLETE_STDOUT_FILENAME": str(answer)},
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = answer.read_text().split(sep)
    assert any(c.startswith(candidate) for c in got), got
    assert all(c.startswith("--t") for c in got), got
