"""Opt-in progress bars: `map(..., progress=True)` and `as_completed(..., progress=True)` draw
a tqdm bar on stderr that reaches the total; off (the default) nothing is drawn and the results
are the same."""

from __future__ import annotations

import re

import pytest
from swarm.client import Client
from swarm.deploy.inproc import InProcessSwarm


def test_bars_render_when_asked_and_nothing_changes_when_off(
    capfd: pytest.CaptureFixture[str],
) -> None:
    payloads = [str(i).encode() for i in range(40)]
    with InProcessSwarm(hosts=1, agents_per_host=8) as swarm, Client(swarm.address) as client:
        plain = client.gather(client.map("echo", payloads))
        done = [f.id for f in client.as_completed(client.map("echo", payloads))]
        quiet = capfd.readouterr().err
        futs = client.map("echo", payloads, progress="mapped")
        assert client.gather(futs) == plain == payloads
        seen = list(client.as_completed(client.map("echo", payloads), progress=True))
        drawn = capfd.readouterr().err
    assert len(done) == len(seen) == 40
    assert "mapped" not in quiet and "task/s" not in quiet and "40/40" not in quiet
    # tqdm's line: "mapped: 100%|####| 40/40 [00:00<00:00, 123task/s]"; the map bar is filled by
    # listeners on the client's loop, so it may close a moment after gather returns.
    assert re.search(r"mapped: 100%\|.*\| 40/40", drawn), drawn
    assert re.search(r"tasks: 100%\|.*\| 40/40", drawn), drawn
