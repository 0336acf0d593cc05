"""The README's dashboard screenshot, under W2 load, reproducibly (docs/dashboard.png).

    python -m swarm.bench.screenshot [--out docs/dashboard.png] [--seconds 60]

Starts a LocalSwarm (an orchestrator and 2 host processes of 500 agents, W2's shape, with the
HTTP port on), drives W2-shaped load at it from this process (batches of 10 ms `sleep` tasks,
far more than the 1,000 agents, so the queue is never empty), and opens the dashboard in
headless chromium. So that every panel has something to show, it also submits a few tasks of a
kind no host serves (they stay queued), a few that fail (their tracebacks), and SIGKILLs one
host halfway (a host-loss event; the supervisor restarts it). After `--seconds` it looks up one
task by id in the page's form and saves the PNG.

Needs Debian's chromium and chromium-driver and selenium (`pip install -e '.[test]'`), as
tests/test_dashboard.py does, which drives its browser through `headless_chromium` below.
"""

from __future__ import annotations

import argparse
import shutil
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from swarm.client import Client
from swarm.common.credentials import Credentials
from swarm.deploy.local import LocalSwarm
from swarm.deploy.procs import poll

if TYPE_CHECKING:
    from selenium.webdriver import Chrome

SLEEP_MS = 10  # W2: asyncio.sleep(0.010) per task
UNSERVED_KIND = "render"  # no host serves it: the queues panel lists it as unserved
PAGE_WAIT_S = 60.0


def headless_chromium(width: int = 1400, height: int = 1400) -> Chrome:
    """Debian's chromium, headless, driven by selenium through Debian's chromedriver (no
    download: selenium's own driver manager would fetch one)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver is None:
        raise RuntimeError("needs Debian's chromium: apt-get install chromium chromium-driver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",  # CI runs as root
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--ignore-certificate-errors",  # the swarm's own CA, for the TLS case
    ):
        opts.add_argument(arg)
    return webdriver.Chrome(options=opts, service=Service(executable_path=driver))


class SleepLoad:
    """Load from a thread: `batch` sleep tasks of `sleep_ms` submitted at once, gathered, again
    (W2's shape by default); the dashboard test drives its page with a small one."""

    def __init__(
        self,
        address: str,
        batch: int = 20_000,
        sleep_ms: int = SLEEP_MS,
        credentials: Credentials | None = None,
    ) -> None:
        self.address, self.batch, self.credentials = address, batch, credentials
        self.payload = str(sleep_ms).encode()
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sleep-load", daemon=True)

    def _run(self) -> None:
        payload = self.payload
        with Client(self.address, credentials=self.credentials) as client:
            while not self._stop.is_set():
                # Errors are the point of some tasks here (a lost host's retries): kept, not raised.
                client.gather(client.map("sleep", [payload] * self.batch), return_exceptions=True)
                self.done += self.batch

    def __enter__(self) -> SleepLoad:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(120)


def _read(path: Path) -> str | None:
    return path.read_text().strip() or None if path.exists() else None


def take(
    out: Path, seconds: float, hosts: int, agents: int, batch: int, size: tuple[int, int]
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    out.parent.mkdir(parents=True, exist_ok=True)
    port_file = out.with_suffix(".port")  # the orchestrator writes its HTTP port here
    port_file.unlink(missing_ok=True)
    server_args = ("--metrics-port", "0", "--metrics-port-file", str(port_file))
    with LocalSwarm(
        hosts=hosts, agents_per_host=agents, server_args=server_args, host_ids="slot",
        on_exit="kill",
    ) as swarm:  # fmt: skip
        swarm.wait_hosts()
        port = int(poll(lambda: _read(port_file), 30.0, "the orchestrator's HTTP port"))
        port_file.unlink(missing_ok=True)
        url = f"http://127.0.0.1:{port}/"
        driver = headless_chromium(*size)
        try:
            with Client(swarm.address) as client, SleepLoad(swarm.address, batch):
                for i in range(3):
                    client.submit(UNSERVED_KIND, f"frame-{i}".encode())
                driver.get(url)
                WebDriverWait(driver, PAGE_WAIT_S).until(
                    lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hosts tbody tr")) >= hosts
                )
                failing = [
                    client.submit("fail", f"bad input {i}: no such file".encode(), max_retries=0)
                    for i in range(3)
                ]
                client.gather(failing, return_exceptions=True)
                time.sleep(seconds / 2)  # the charts need minutes of history; this is their load
                swarm.kill_host(hosts - 1)  # a host-loss event; the supervisor restarts it
                swarm.wait_hosts()
                time.sleep(seconds / 2)
                # Submitted last: retention (100,000 tasks, seconds at this rate) keeps it.
                client.submit("sleep", b"10", id="w2-lookup").result(timeout=60)
                driver.find_element(By.ID, "task-id").send_keys("w2-lookup")
                driver.find_element(By.CSS_SELECTOR, "#lookup button").click()
                WebDriverWait(driver, PAGE_WAIT_S).until(
                    lambda d: "succeeded" in d.find_element(By.ID, "task-result").text
                )
                WebDriverWait(driver, PAGE_WAIT_S).until(
                    lambda d: "bad input" in d.find_element(By.ID, "failures").text
                )
                WebDriverWait(driver, PAGE_WAIT_S).until(
                    lambda d: d.find_elements(By.CSS_SELECTOR, "#losses tbody tr")
                )
                driver.find_element(By.CSS_SELECTOR, "#failures summary").click()  # a traceback
                # The window as tall as the page: the PNG holds all of it and nothing below.
                height = driver.execute_script("return document.documentElement.scrollHeight")
                frame = driver.execute_script("return window.outerHeight - window.innerHeight")
                driver.set_window_size(size[0], int(height) + int(frame))
                WebDriverWait(driver, PAGE_WAIT_S).until(
                    lambda d: d.execute_script("return window.innerHeight") >= int(height)
                )
                if not driver.save_screenshot(str(out)):
                    raise RuntimeError(f"chromium did not save {out}")
                print(f"{out}: W2 load, {hosts} hosts x {agents} agents, {seconds:.0f} s")
        finally:
            driver.quit()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m swarm.bench.screenshot", description=__doc__)
    p.add_argument("--out", type=Path, default=Path("docs/dashboard.png"))
    p.add_argument("--seconds", type=float, default=60.0, help="of load before the shot")
    p.add_argument("--hosts", type=int, default=2, help="host processes (W2: 2)")
    p.add_argument("--agents-per-host", type=int, default=500, help="(W2: 500)")
    p.add_argument(
        "--batch", type=int, default=20_000, help="tasks per submitted batch (W2: 20,000)"
    )
    p.add_argument("--width", type=int, default=1400)
    p.add_argument("--height", type=int, default=800, help="at first; then the page's")
    args = p.parse_args(argv)
    take(
        args.out,
        args.seconds,
        args.hosts,
        args.agents_per_host,
        args.batch,
        (args.width, args.height),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
